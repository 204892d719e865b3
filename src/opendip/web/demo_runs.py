"""The demo region's settlement runs, shown in the platform.

`opendip demo` settles each month of the year (月度预结算) and the year (年终清算) with the
engine pipeline and lists them in `platform-runs.json`; on start the platform records each
listed run once as a published run (结算管理 lists them; the annual clearing is the latest
published run, so the home page, 结算公示, 院端分析 and the reports show the demo's results).
The money is the engine's: the platform only reads the files the demo wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from opendip.store import Run, Store, utcnow
from opendip.store import repositories as repo

log = logging.getLogger(__name__)

INDEX = "platform-runs.json"
#: Where the demo writes its monthly runs (one directory per month).
MONTHS_DIR = "settlement-months"


def settle_demo_months(ctx: Any) -> list[dict[str, str]]:
    """Monthly pre-settlement of every month of the demo year, from the demo's grouping
    (QC-blocking cases excluded), and the index the platform loads; returns the index."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from opendip.scoring.bench import NEEDS, all_case_mean
    from opendip.settlement.run import InputFiles, run_month

    missing = [k for k in NEEDS if k not in ctx.artifacts]
    if missing or "settlement" not in ctx.artifacts:
        return []
    files = InputFiles(
        policy=ctx.policy_path,
        cases=ctx.artifacts["cases"],
        grouped=ctx.artifacts["grouped"],
        directory=ctx.artifacts["directory"],
        hospitals=ctx.artifacts["hospitals"],
        all_case_mean_fen=all_case_mean(ctx),
        credit=ctx.artifacts.get("credit_previous"),
        prepayment_base=ctx.artifacts.get("prepayment_base"),
        previous_assessment=ctx.artifacts.get("previous_assessment"),
    )
    months = pc.unique(pq.read_table(files.cases, columns=["settle_month"])["settle_month"])
    root = Path(ctx.workdir)
    index: list[dict[str, str]] = []
    for month in sorted(months.to_pylist()):
        out = root / MONTHS_DIR / month
        run_month(files, month, out, excel=False, engine=ctx.engine)
        index.append({"kind": "monthly", "period": month, "settlement": str(out.relative_to(root))})
    settlement = Path(ctx.artifacts["settlement"])
    year = json.loads((settlement / "summary.json").read_text(encoding="utf-8"))["year"]
    index.append(
        {"kind": "annual", "period": str(year), "settlement": str(settlement.relative_to(root))}
    )
    (root / INDEX).write_text(json.dumps(index, ensure_ascii=False, indent=2), encoding="utf-8")
    return index


def _manifest(data_dir: Path, entry: dict[str, str]) -> dict[str, Any] | None:
    from opendip.web.runs import month_manifest, year_manifest

    settlement = (data_dir / entry["settlement"]).resolve()
    summary_path = settlement / "summary.json"
    run_manifest = settlement / "manifest.json"
    if not summary_path.is_file() or not run_manifest.is_file():
        return None
    from opendip.settlement.output import OutputIntegrityError, verify_outputs

    try:  # the money recorded in the store comes from summary.json: only when it matches
        verify_outputs(settlement)
    except OutputIntegrityError as exc:
        log.warning("示范运行 %s %s 未登记：%s", entry["kind"], entry["period"], exc)
        return None
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    engine = json.loads(run_manifest.read_text(encoding="utf-8"))
    money = month_manifest(summary) if entry["kind"] == "monthly" else year_manifest(summary)
    cases = summary["cases"] if entry["kind"] == "monthly" else summary["cases"]["cases"]
    policy = engine.get("policy") or {}
    return {
        "period": entry["period"],
        "policy": policy.get("file", ""),
        "policy_version": policy.get("version", ""),
        "cases": int(cases),
        "results_from": "示范区域全流程（示范数据一键运行）",
        "outputs": {
            "cases": str(data_dir.resolve() / f"cases_{entry['period'][:4]}.parquet"),
            "grouped": str(data_dir.resolve() / "grouped.parquet"),
            "qc": str(data_dir.resolve() / "qc"),
            "settlement": str(settlement),
        },
        "outputs_scored": str(settlement / "cases.parquet"),
        **money,
        "notes": ["示范区域：一键示范运行用引擎流水线结算，平台启动时登记为已公示运行"],
    }


def load_demo_runs(store: Store, data_dir: Path) -> int:
    """Record the runs listed in DATA/platform-runs.json that the store does not have yet
    (matched on kind, period and settlement directory) as published; returns how many."""
    data_dir = Path(data_dir)
    path = data_dir / INDEX
    if not path.is_file():
        return 0
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    added = 0
    with store.session() as s:
        known = {
            (r.kind, r.period, (r.manifest or {}).get("outputs", {}).get("settlement"))
            for r in s.scalars(select(Run).where(Run.kind.in_(("monthly", "annual"))))
        }
        now = utcnow()
        for i, entry in enumerate(entries):
            manifest = _manifest(data_dir, entry)
            if manifest is None:
                continue
            key = (entry["kind"], entry["period"], manifest["outputs"]["settlement"])
            if key in known:
                continue
            # Listed order is publication order: the annual clearing last, so it is the
            # latest published run the home page and hospitals see.
            at = now + dt.timedelta(microseconds=i)
            run = Run(
                kind=entry["kind"],
                period=entry["period"],
                params={"source": "opendip demo"},
                status="published",
                progress=100,
                step="完成",
                manifest=manifest,
                created_at=at,
                started_at=at,
                finished_at=at,
                approved_at=at,
                published_at=at,
            )
            s.add(run)
            s.flush()
            repo.audit(s, None, "run.demo", "run", run.id, {"kind": run.kind, "period": run.period})
            added += 1
        s.commit()
    return added
