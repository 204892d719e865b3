# ruff: noqa: B008  (FastAPI dependencies are declared as Depends(...) defaults)
"""信息公开: the public page (no login) listing what the agency has published, with downloads.

Only published runs (status 已公示) are listed, and only the documents the policy's
`disclosure.contents` names. Every other run id, document or format answers 404 — with or
without a login — so nothing unpublished can be reached or probed.
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from opendip.policy.sections.disclosure import DOCUMENT_LABELS, DisclosurePolicy
from opendip.store import Run
from opendip.store import repositories as repo
from opendip.web.app import render
from opendip.web.run_reports import PUBLICATION
from opendip.web.security import NotFound, db

router = APIRouter()

RESULT_LABELS = {"surplus": "结余", "deficit": "超支", "balanced": "持平"}
POOL_LABELS = {"employee": "职工", "resident": "居民"}
#: Downloadable formats per document.
FORMATS = {"settlement": ("pdf", "xlsx"), "qc": ("csv",), "surplus_deficit": ("csv",)}
MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
#: URL names of the documents (/public/runs/<id>/<name>.<fmt>).
URL_NAMES = {"settlement": "publication", "qc": "qc", "surplus_deficit": "surplus"}
QC_HEADER = ("医疗机构代码", "医疗机构名称", "质控病例数", "质控通过病例数", "质控通过率")
SURPLUS_HEADER = (
    "医疗机构代码",
    "医疗机构名称",
    "统筹区",
    "DIP 比较金额（元）",
    "按项目比较金额（元）",
    "差额（元）",
    "结余/超支",
)


def _policy(request: Request) -> DisclosurePolicy:
    from opendip.policy import PolicyFile, demo_policy_path

    state = request.app.state
    path = state.settings.policy_path or state.region.policy_path() or demo_policy_path()
    return PolicyFile.read(path).periods()[-1][2].disclosure


def _open(request: Request) -> DisclosurePolicy:
    policy = _policy(request)
    if not policy.public_page:
        raise NotFound("本区域未开放信息公开页面")
    return policy


def _run_dir(run: Run) -> Path | None:
    """The run's settlement directory, only when its outputs match its manifest: outputs
    changed after the run are never disclosed (as for every other reader of a run)."""
    from opendip.settlement.output import OutputIntegrityError, verify_outputs

    path = (run.manifest or {}).get("outputs", {}).get("settlement")
    if not path or not (Path(path) / "manifest.json").is_file():
        return None
    try:
        verify_outputs(Path(path))
    except OutputIntegrityError:
        return None
    return Path(path)


def _qc_rows(run: Run, names: dict[str, str]) -> list[dict[str, Any]]:
    """QC evaluation by hospital over the run's period: the QC status of the cases settled in
    the period (a demo run shares the year's QC directory with the other months)."""
    import duckdb

    outputs = (run.manifest or {}).get("outputs", {})
    qc, cases = outputs.get("qc"), outputs.get("cases")
    status = Path(qc) / "case_status.parquet" if qc else None
    if status is None or not status.is_file() or not cases or not Path(cases).is_file():
        return []
    month = "settle_month = ?" if len(run.period) == 7 else "settle_month LIKE ? || '-%'"
    found = (
        duckdb.connect()
        .execute(
            f"""SELECT CAST(hospital_id AS VARCHAR), count(*), sum(CAST(passed AS INT))
                FROM read_parquet(?) WHERE CAST(case_id AS VARCHAR) IN (
                    SELECT CAST(case_id AS VARCHAR) FROM read_parquet(?) WHERE {month})
                GROUP BY 1 ORDER BY 1""",
            [str(status), str(cases), run.period],
        )
        .fetchall()
    )
    return [
        {
            "hospital_id": h,
            "name": names.get(h, ""),
            "cases": int(n),
            "passed": int(p or 0),
            # Rounded half up to 4 places, shown as a percentage with 2 decimals.
            "pass_rate": (Decimal(int(p or 0)) / Decimal(int(n))).quantize(
                Decimal("0.0001"), rounding=ROUND_HALF_UP
            ),
        }
        for h, n, p in found
    ]


def _surplus_rows(run: Run, names: dict[str, str]) -> list[dict[str, Any]]:
    settlement = _run_dir(run)
    if run.kind != "annual" or settlement is None:
        return []
    path = settlement / "hospitals.parquet"
    if not path.is_file():
        return []
    cols = ["hospital_id", "pool", "compare_dip_fen", "compare_ffs_fen", "dip_minus_ffs_fen"]
    table = pq.read_table(path)
    if not set(cols) <= set(table.column_names):
        return []
    return [
        {
            "hospital_id": str(r["hospital_id"]),
            "name": names.get(str(r["hospital_id"]), ""),
            "pool": POOL_LABELS.get(r["pool"], r["pool"]),
            "dip_fen": int(r["compare_dip_fen"]),
            "ffs_fen": int(r["compare_ffs_fen"]),
            "diff_fen": int(r["dip_minus_ffs_fen"]),
            "result": RESULT_LABELS[
                "surplus"
                if r["dip_minus_ffs_fen"] > 0
                else "deficit"
                if r["dip_minus_ffs_fen"] < 0
                else "balanced"
            ],
        }
        for r in table.select(cols).to_pylist()
    ]


def _entries(request: Request, s: Session, policy: DisclosurePolicy) -> list[dict[str, Any]]:
    names = request.app.state.region.hospital_names()
    out = []
    for run in repo.published_runs(s):
        docs: dict[str, Any] = {}
        if "settlement" in policy.contents and _run_dir(run) is not None:
            docs["settlement"] = True
        if "qc" in policy.contents:
            rows = _qc_rows(run, names)
            if rows:
                docs["qc"] = rows
        if "surplus_deficit" in policy.contents:
            rows = _surplus_rows(run, names)
            if rows:
                docs["surplus_deficit"] = rows
        if docs:
            out.append({"run": run, "docs": docs})
    return out


def _published(s: Session, run_id: int) -> Run:
    """The run if published; anything else (missing, queued, approved, failed) is 404."""
    run = s.get(Run, run_id)
    if run is None or run.status != "published":
        raise NotFound("未找到该公开信息")
    return run


@router.get("/public", include_in_schema=False)
def public_page(request: Request, s: Session = Depends(db)) -> Response:
    policy = _open(request)
    return render(
        request,
        "public.html",
        viewer=None,
        csrf_token="",
        entries=_entries(request, s, policy),
        labels=DOCUMENT_LABELS,
    )


def _csv(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@router.get("/public/runs/{run_id}/{name}.{fmt}", include_in_schema=False)
def public_file(
    request: Request, run_id: int, name: str, fmt: str, s: Session = Depends(db)
) -> Response:
    policy = _open(request)
    doc = {v: k for k, v in URL_NAMES.items()}.get(name)
    if doc is None or doc not in policy.contents or fmt not in FORMATS[doc]:
        raise NotFound("未找到该公开信息")
    run = _published(s, run_id)
    filename = f"{DOCUMENT_LABELS[doc]}_{run.period}_第{run.id}号.{fmt}"
    names = request.app.state.region.hospital_names()
    if doc == "settlement":
        settlement = _run_dir(run)
        if settlement is None:
            raise NotFound("未找到该公开信息")
        files = request.app.state.runs.reports.files(run.id, settlement, PUBLICATION)
        return FileResponse(files[fmt], media_type=MEDIA[fmt], filename=filename)
    if doc == "qc":
        qc = _qc_rows(run, names)
        if not qc:
            raise NotFound("未找到该公开信息")
        body = _csv(
            QC_HEADER,
            [
                (
                    r["hospital_id"],
                    r["name"],
                    r["cases"],
                    r["passed"],
                    "" if r["pass_rate"] is None else f"{r['pass_rate']:.2%}",
                )
                for r in qc
            ],
        )
    else:
        sd = _surplus_rows(run, names)
        if not sd:
            raise NotFound("未找到该公开信息")
        body = _csv(
            SURPLUS_HEADER,
            [
                (
                    r["hospital_id"],
                    r["name"],
                    r["pool"],
                    _yuan(r["dip_fen"]),
                    _yuan(r["ffs_fen"]),
                    _yuan(r["diff_fen"]),
                    r["result"],
                )
                for r in sd
            ],
        )
    from urllib.parse import quote

    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f"attachment; filename*=utf-8''{quote(filename)}"},
    )
