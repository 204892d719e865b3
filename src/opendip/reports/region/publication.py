"""结算公示: the per-hospital settlement table an agency posts, from a settlement run.

One row per hospital and pool, as settled (annual: final point value, clearing and
assessment; monthly: pre-settlement at the budget point value with withholding), and a
合计 row per pool; the totals equal the run's reconciliation to the fen.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import opendip
from opendip.reports.model import ColumnSpec, Figure, Report, Section, Table
from opendip.reports.region.build import period_label
from opendip.reports.region.common import LEVEL_LABELS, LEVEL_ORDER, POOL_LABELS, RESULT_LABELS
from opendip.reports.source import ReportInputError, read_manifest, resolve_run

HEAD = [
    ColumnSpec("hospital_id", "医疗机构代码"),
    ColumnSpec("hospital_name", "医疗机构名称"),
    ColumnSpec("level_label", "等级"),
    ColumnSpec("pool_label", "统筹区"),
    ColumnSpec("cases", "DIP 病例数", "count"),
    ColumnSpec("total_score", "总结算分值", "score"),
    ColumnSpec("point_value", "点值（元/分）", "point_value"),
    ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
    ColumnSpec("personal_share_fen", "个人负担", "fen"),
    ColumnSpec("fund_payable_fen", "统筹应支付", "fen"),
]
ANNUAL = [
    *HEAD,
    ColumnSpec("ffs_fund_fen", "按项目统筹支付", "fen"),
    ColumnSpec("dip_minus_ffs_fen", "DIP 与按项目差额", "fen"),
    ColumnSpec("result_label", "结余/超支"),
    ColumnSpec("adjustment_fen", "结余超支调整", "fen"),
    ColumnSpec("withheld_fen", "质量保证金", "fen"),
    ColumnSpec("returned_fen", "返还保证金", "fen"),
    ColumnSpec("clearing_total_fen", "清算应付总额", "fen"),
    ColumnSpec("advances_fen", "已预付金额", "fen"),
    ColumnSpec("clearing_payment_fen", "清算应拨付", "fen"),
]
MONTHLY = [
    *HEAD,
    ColumnSpec("withheld_fen", "预留质量保证金", "fen"),
    ColumnSpec("advance_fen", "本月预付", "fen"),
]


def build_publication(run_dir: Path, search_dirs: tuple[Path, ...] = ()) -> Report:
    run_dir = Path(run_dir)
    read_manifest(run_dir)
    src = resolve_run(run_dir, search_dirs=search_dirs)
    final = src.policy.periods()[-1][2]
    region = final.region.name
    columns = ANNUAL if src.kind == "annual" else MONTHLY
    path = run_dir / "hospitals.parquet"
    if not path.is_file():
        raise ReportInputError(f"结算运行目录 {run_dir} 缺少医疗机构结算表 hospitals.parquet")
    settled = pq.read_table(path).to_pylist()
    names = {
        str(r["hospital_id"]): r
        for r in pq.read_table(
            src.paths["hospitals"], columns=["hospital_id", "name", "level"]
        ).to_pylist()
    }
    point_values = _point_values(run_dir)
    money = [c.name for c in columns if c.unit == "fen"]
    rows: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Any]] = {}
    for r in settled:
        h = names.get(str(r["hospital_id"]), {})
        level = r.get("level") or h.get("level")
        row = {c.name: r.get(c.name) for c in columns}
        row.update(
            hospital_id=r["hospital_id"],
            hospital_name=h.get("name") or r["hospital_id"],
            level=level,
            level_label=LEVEL_LABELS.get(level, level or "未定级"),
            pool=r["pool"],
            pool_label=POOL_LABELS.get(r["pool"], r["pool"]),
            point_value=Decimal(r["point_value"])
            if r.get("point_value") is not None
            else point_values.get(r["pool"]),
            result_label=RESULT_LABELS.get(r.get("result") or "", r.get("result")),
        )
        rows.append(row)
        t = totals.setdefault(
            r["pool"],
            {"cases": 0, "total_score": Decimal(0), **dict.fromkeys(money, 0)},
        )
        t["cases"] += int(r["cases"] or 0)
        t["total_score"] += Decimal(r["total_score"] or 0)
        for k in money:
            t[k] += int(r.get(k) or 0)
    rows.sort(key=lambda r: (r["pool"], LEVEL_ORDER.get(r["level"], 99), r["hospital_id"]))
    figures = []
    for pool in sorted(totals):
        label = POOL_LABELS.get(pool, pool)
        rows.append(
            {
                "hospital_id": "",
                "hospital_name": f"{label}合计",
                "pool": pool,
                "pool_label": label,
                "point_value": point_values.get(pool),
                "is_total": True,
                **totals[pool],
            }
        )
        for k in money:
            figures.append(
                Figure(
                    f"publication.{pool}.{k}",
                    f"{label}{_label(columns, k)}合计",
                    totals[pool][k],
                    "fen",
                )
            )
    kind_title = "年终清算" if src.kind == "annual" else "月度预结算"
    title = f"{region} DIP {kind_title}结算公示表（{period_label(src.kind, src.period)}）"
    section = Section(
        "publication",
        "结算公示",
        [
            f"根据 {region} DIP 实施细则（政策版本 {final.version}），现将 {period_label(src.kind, src.period)}"
            f"{kind_title}结果予以公示。金额单位：元。医疗机构对结算结果有异议的，可在公示期内"
            "通过平台提出申诉。"
        ],
        figures,
        [Table("publication.hospitals", "医疗机构结算结果", columns, rows)],
    )
    provenance = {
        "run_dir": str(run_dir),
        "run_kind": src.kind,
        "manifest_sha256": src.manifest_sha256,
        "policy_file": src.policy_path.name,
        "policy_version": str(final.version),
        "code_version": opendip.__version__,
    }
    return Report("publication", src.period, title, region, [section], provenance)


def _label(columns: list[ColumnSpec], name: str) -> str:
    return next(c.label for c in columns if c.name == name)


def _point_values(run_dir: Path) -> dict[str, Decimal]:
    """Each pool's point value (from the run's cases; one value per pool in a run)."""
    t = pq.read_table(run_dir / "cases.parquet", columns=["pool", "point_value"])
    out: dict[str, Decimal] = {}
    for pool, pv in zip(
        t.column("pool").to_pylist(), t.column("point_value").to_pylist(), strict=True
    ):
        if pool not in out and pv is not None:
            out[pool] = Decimal(pv)
    return out
