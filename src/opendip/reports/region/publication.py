"""结算公示: the per-hospital settlement tables an agency posts, from a settlement run.

One row per hospital and pool as settled, and a 合计 row per pool whose amounts equal the
run's reconciliation to the fen (tests check it). Annual runs post two tables: the result
(score, DIP amount, fund payable against fee-for-service, surplus or deficit) and the
clearing payment (adjustment, deposit withheld and returned, advances, what is paid now);
monthly runs one: the pre-settlement with withholding and advance. The point value of each
pool is stated once, in the text.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import opendip
from opendip.policy.sections.settlement import FFS_BASIS_LABELS
from opendip.reports.model import ColumnSpec, Report, Section, Table
from opendip.reports.region.build import period_label
from opendip.reports.region.common import LEVEL_LABELS, LEVEL_ORDER, POOL_LABELS, RESULT_LABELS
from opendip.reports.render.fmt import fmt_value
from opendip.reports.source import ReportInputError, resolve_run

NAME = [
    ColumnSpec("hospital_id", "医疗机构代码"),
    ColumnSpec("hospital_name", "医疗机构名称"),
]


def result_columns(basis: str = "fund") -> list[ColumnSpec]:
    """The annual result table on the policy's comparison basis (settlement.ffs_basis): the
    two amounts compared, their difference, the ratio used and the band applied, so that a
    hospital can redo its own line by hand (docs/money.md)."""
    compared = (
        [ColumnSpec("total_cost_fen", "按项目医疗总费用", "fen")]
        if basis == "total"
        else [ColumnSpec("ffs_fund_fen", "按项目统筹支付", "fen")]
    )
    return [
        *NAME,
        ColumnSpec("level_label", "等级"),
        ColumnSpec("pool_label", "统筹区"),
        ColumnSpec("cases", "DIP 病例数", "count"),
        ColumnSpec("total_score", "总结算分值", "score"),
        ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
        ColumnSpec("fund_payable_fen", "统筹应支付", "fen"),
        *compared,
        ColumnSpec("dip_minus_ffs_fen", "差额", "fen"),
        ColumnSpec("result_label", "结余/超支"),
        ColumnSpec("dip_ffs_ratio", "DIP/按项目比值", "coefficient"),
        ColumnSpec("ffs_band_label", "适用分段"),
    ]


RESULT = result_columns("fund")
CLEARING = [
    *NAME,
    ColumnSpec("pool_label", "统筹区"),
    ColumnSpec("adjustment_fen", "结余超支调整", "fen"),
    ColumnSpec("withheld_fen", "质量保证金", "fen"),
    ColumnSpec("returned_fen", "返还保证金", "fen"),
    ColumnSpec("clearing_total_fen", "清算应付总额", "fen"),
    ColumnSpec("advances_fen", "已预付金额", "fen"),
    ColumnSpec("clearing_payment_fen", "清算应拨付", "fen"),
]
#: 预付金 columns, shown when the clearing prepaid any hospital.
PREPAYMENT = [
    ColumnSpec("prepaid_fen", "年初预付金", "fen"),
    ColumnSpec("prepayment_recovered_fen", "月度扣回预付金", "fen"),
    ColumnSpec("prepayment_outstanding_fen", "清算扣回预付金", "fen"),
]
MONTHLY = [
    *NAME,
    ColumnSpec("level_label", "等级"),
    ColumnSpec("pool_label", "统筹区"),
    ColumnSpec("cases", "DIP 病例数", "count"),
    ColumnSpec("total_score", "总结算分值", "score"),
    ColumnSpec("dip_amount_fen", "DIP 支付总额", "fen"),
    ColumnSpec("fund_payable_fen", "统筹应支付", "fen"),
    ColumnSpec("withheld_fen", "预留质量保证金", "fen"),
    ColumnSpec("advance_fen", "本月预付", "fen"),
]


def _rows(
    settled: list[dict[str, Any]], names: dict[str, dict[str, Any]], columns: list[ColumnSpec]
) -> list[dict[str, Any]]:
    """Hospital rows (pool, level, hospital order) then one 合计 row per pool."""
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
            result_label=RESULT_LABELS.get(r.get("result") or "", r.get("result")),
        )
        rows.append(row)
        t = totals.setdefault(
            r["pool"], {"cases": 0, "total_score": Decimal(0), **dict.fromkeys(money, 0)}
        )
        t["cases"] += int(r["cases"] or 0)
        t["total_score"] += Decimal(r["total_score"] or 0)
        for k in money:
            t[k] += int(r.get(k) or 0)
    rows.sort(key=lambda r: (r["pool"], LEVEL_ORDER.get(r["level"], 99), r["hospital_id"]))
    for pool in sorted(totals):
        label = POOL_LABELS.get(pool, pool)
        rows.append(
            {
                "hospital_id": "",
                "hospital_name": f"{label}合计",
                "pool": pool,
                "pool_label": label,
                "is_total": True,
                **totals[pool],
            }
        )
    return rows


def build_publication(run_dir: Path, search_dirs: tuple[Path, ...] = ()) -> Report:
    run_dir = Path(run_dir)
    src = resolve_run(run_dir, search_dirs=search_dirs)
    final = src.policy.periods()[-1][2]
    region = final.region.name
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
    when = period_label(src.kind, src.period)
    pvs = "；".join(
        f"{POOL_LABELS.get(p, p)}{'结算' if src.kind == 'annual' else '预算'}点值 "
        f"{fmt_value(v, 'point_value')} 元/分"
        for p, v in sorted(_point_values(settled).items())
    )
    if src.kind == "annual":
        kind_title = "年终清算"
        basis = str(final.settlement.ffs_basis)
        result = result_columns(basis)
        clearing = CLEARING
        if settled and "findings_deducted_fen" in settled[0]:
            at = [c.name for c in CLEARING].index("clearing_total_fen")
            clearing = [
                *CLEARING[:at],
                ColumnSpec("findings_deducted_fen", "监管扣款", "fen"),
                *CLEARING[at:],
            ]
        if any(r.get("prepaid_fen") for r in settled):
            at = [c.name for c in clearing].index("clearing_payment_fen")
            clearing = [*clearing[:at], *PREPAYMENT, *clearing[at:]]
        tables = [
            Table(
                "publication.hospitals", "医疗机构结算结果", result, _rows(settled, names, result)
            ),
            Table(
                "publication.clearing",
                "医疗机构清算拨付",
                clearing,
                _rows(settled, names, clearing),
            ),
        ]
        findings = run_dir / "findings.parquet"
        if findings.is_file():
            tables.append(_findings_table(findings, names))
    else:
        kind_title = "月度预结算"
        monthly = MONTHLY
        if any(r.get("prepayment_recovery_fen") for r in settled):
            monthly = [
                *MONTHLY,
                ColumnSpec("prepayment_recovery_fen", "扣回预付金", "fen"),
                ColumnSpec("advance_paid_fen", "本月实际拨付", "fen"),
            ]
        tables = [
            Table(
                "publication.hospitals",
                "医疗机构月度预结算",
                monthly,
                _rows(settled, names, monthly),
            )
        ]
    text = (
        f"根据{region} DIP 实施细则（政策版本 {final.version}），现将{when}{kind_title}结果予以公示。"
        f"{pvs}。金额单位：元。医疗机构对结算结果有异议的，可在公示期内通过平台提出申诉。"
    )
    if src.kind == "annual":
        text += (
            f"结余留用/超支分担比较口径：{FFS_BASIS_LABELS[basis]}；差额与比值均按此口径，"
            "比值四舍五入到 4 位小数，适用分段按政策规定的比值区间判断"
            "（医共体统一结算的，比值与分段为医共体的）。"
        )
    provenance = {
        "run_dir": str(run_dir),
        "run_kind": src.kind,
        "manifest_sha256": src.manifest_sha256,
        "policy_file": src.policy_path.name,
        "policy_version": str(final.version),
        "code_version": opendip.__version__,
    }
    return Report(
        "publication",
        src.period,
        f"{region} DIP {kind_title}结算公示表（{when}）",
        region,
        [Section("publication", "结算公示", [text], [], tables)],
        provenance,
    )


def _findings_table(path: Path, names: dict[str, dict[str, Any]]) -> Table:
    """Confirmed supervision findings applied at this clearing, per hospital."""
    rows = []
    for r in pq.read_table(path).to_pylist():
        h = names.get(str(r["hospital_id"]), {})
        what = {
            "regroup": f"病例 {r['case_id']} 改入病种 {r['target_group_code']}",
            "merge": f"病例 {r['case_id']} 并入病例 {r['merge_into']}",
            "deduct": f"扣款{'（病例 ' + r['case_id'] + '）' if r['case_id'] else ''}",
        }.get(r["kind"], r["kind"])
        rows.append(
            {
                "hospital_id": r["hospital_id"],
                "hospital_name": h.get("name") or r["hospital_id"],
                "pool_label": POOL_LABELS.get(r["pool"], r["pool"]),
                "kind_label": r["kind_label"],
                "what": what,
                "decision": r["decision"],
                "amount_fen": r["amount_fen"],
            }
        )
    return Table(
        "publication.findings",
        "监管结果应用（已确认）",
        [
            *NAME,
            ColumnSpec("pool_label", "统筹区"),
            ColumnSpec("kind_label", "处理方式"),
            ColumnSpec("what", "内容"),
            ColumnSpec("decision", "处理决定"),
            ColumnSpec("amount_fen", "扣款金额", "fen"),
        ],
        rows,
        note="改入病种、合并分解住院已体现在本次清算的分值与金额中；扣款从清算应付总额中扣减，留在统筹基金。",
    )


def _point_values(settled: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Each pool's point value, as settled (one value per pool in a run)."""
    return {
        r["pool"]: Decimal(r["point_value"]) for r in settled if r.get("point_value") is not None
    }
