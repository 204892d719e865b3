"""Writing a settlement run: sorted Parquet, Excel for people, reconciliation, manifest.

Every file is written deterministically (rows sorted by their key, no timestamps, fixed
Excel document dates), so a second run on the same inputs gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

import opendip
from opendip.contract.cells import EXCEL_OPTIONS
from opendip.contract.tables import INSURANCE_TYPE_LABELS, SCORED, SCORED_SHOWN
from opendip.policy import PolicyFile
from opendip.policy.sections.settlement import FFS_BASIS_LABELS, FFS_RULE_LABELS

#: Chinese headers of result columns (Excel, reports). Money columns end in _fen.
LABELS: dict[str, str] = {
    **{c.name: c.label for c in SCORED.columns},
    "explanation": "计算说明",
    "settle_month": "结算月份",
    "cases": "病例数",
    "total_score": "总结算分值",
    "withholding_share": "质量保证金比例",
    "credit_grade": "信用等级",
    "prepaid_fen": "年初预付金",
    "prepayment_reason": "预付金资格",
    "prepayment_recovery_fen": "本月扣回预付金",
    "advance_paid_fen": "本月实际拨付",
    "prepayment_recovered_fen": "月度已扣回预付金",
    "prepayment_outstanding_fen": "清算扣回预付金",
    "prepaid_without_line_fen": "本年无DIP病例的预付金",
    "cash_identity": "拨付恒等式成立",
    "withheld_fen": "质量保证金",
    "advance_fen": "月度预付金额",
    "level": "医院等级",
    "community_id": "医共体",
    "unit_id": "结算单元",
    "compare_dip_fen": "比较基数：DIP侧",
    "compare_ffs_fen": "比较基数：按项目侧",
    "dip_minus_ffs_fen": "DIP与按项目差额",
    "result": "结余/超支",
    "dip_ffs_ratio": "DIP/按项目比值（所用）",
    "ffs_rule": "结余留用/超支分担规则",
    "ffs_band_label": "适用分段",
    "adjustment_fen": "结余超支调整",
    "adjusted_fen": "调整后统筹支付",
    "assessment_score": "考核得分",
    "return_share": "保证金返还比例",
    "returned_fen": "返还保证金",
    "deposit_deducted_fen": "扣减保证金",
    "assessment_status": "考核说明",
    "clearing_total_fen": "清算应付总额",
    "advances_fen": "已预付金额",
    "clearing_payment_fen": "清算应拨付",
    "department": "科室",
    "total_cost_fen": "医疗总费用",
    # reconciliation (对账) per pool
    "budget_fen": "年度基金预算",
    "reserve_fen": "区域调剂金",
    "non_dip_cases": "非DIP病例数",
    "non_dip_ffs_fen": "非DIP病例按项目统筹支付",
    "non_dip_deducted_fen": "点值前扣除的非DIP支付",
    "available_fen": "DIP可分配基金",
    "point_value_formula": "点值公式",
    "point_value_target_fen": "点值分子",
    "dip_amount_cases_fen": "DIP金额（病例合计）",
    "dip_amount_hospitals_fen": "DIP金额（医疗机构合计）",
    "rounding_residual_fen": "舍入差",
    "ffs_basis": "结余超支比较口径",
    "reserve_used_fen": "调剂金使用（超支分担）",
    "surplus_cap_fen": "结余留用收回",
    "reserve_opening_fen": "调剂金期初",
    "reserve_uses_fen": "调剂金使用",
    "reserve_returns_fen": "收回至调剂金",
    "reserve_closing_fen": "调剂金期末",
    "reserve_balance_fen": "调剂金余额",
    "kept_in_fund_fen": "收回留在统筹基金",
    "hospitals_in_surplus": "结余医疗机构数",
    "hospitals_in_deficit": "超支医疗机构数",
    "hospitals_balanced": "持平医疗机构数",
    "cases_equal_hospitals": "病例与医疗机构合计一致",
    "clearing_identity": "清算恒等式成立",
    "members": "成员数",
    "unit_kind": "结算单元类型",
    "unit_adjustment_fen": "结算单元调整",
}

ENUM_LABELS: dict[str, dict[str, str]] = {
    "pool": INSURANCE_TYPE_LABELS,
    "result": {"surplus": "结余", "deficit": "超支", "balanced": "持平"},
    "ffs_rule": {**FFS_RULE_LABELS, "none": "未设置"},
    "deviation": {
        "normal": "正常",
        "high": "高倍率",
        "low": "低倍率",
        "extreme": "极端",
        "special_review": "特例单议",
    },
    "level": {"tertiary": "三级", "secondary": "二级", "primary": "一级", "unrated": "未定级"},
    "ffs_basis": FFS_BASIS_LABELS,
    "point_value_formula": {
        "fund_plus_personal": "（可分配基金 + 个人负担）÷ 总分值",
        "fund_only": "可分配基金 ÷ 总分值",
        "fund_over_ratio": "可分配基金 ÷ 报销比例 ÷ 总分值",
    },
    "unit_kind": {"hospital": "医疗机构", "community": "医共体"},
    "cases_equal_hospitals": {True: "是", False: "否"},
    "clearing_identity": {True: "是", False: "否"},
}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str | None:
    """The checkout's commit, when the code runs from a git working tree."""
    root = Path(opendip.__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Write one Parquet file deterministically (the caller sorts the rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", write_statistics=True)
    return path


#: Rows an Excel sheet holds below its header (1 048 576 in all).
EXCEL_MAX_ROWS = 1_048_575


def write_case_table(expr: ir.Table, path: Path) -> tuple[Path, int]:
    """Write a per-case result (already ordered) to one Parquet file and count its rows.

    On DuckDB the rows stream from the engine to the file (COPY … TO), so a year of tens of
    millions of cases never sits in Python memory; other engines go through Arrow.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    con = expr._find_backend()
    if con.name == "duckdb":
        con.to_parquet(expr, str(path), compression="zstd")
        return path, pq.ParquetFile(path).metadata.num_rows
    table = expr.to_pyarrow()
    write_parquet(table, path)
    return path, table.num_rows


def case_sheet(cases: pa.Table) -> pa.Table:
    """The per-case Excel sheet: the SCORED columns people read, and the Chinese explanation
    rendered from its facts (`opendip.scoring.explain.render`) in place of them."""
    from opendip.scoring.explain import render_column

    shown = cases.select(list(SCORED_SHOWN))
    shown = shown.append_column("explanation", pa.array(render_column(cases), pa.string()))
    for rule in ("tcm_group", "new_tech"):  # the special payment rules applied
        if rule in cases.column_names:
            shown = shown.append_column(rule, cases.column(rule))
    return shown


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name.endswith("_fen"):
        return float(Decimal(int(value)) / 100)
    if name in ENUM_LABELS:
        return ENUM_LABELS[name].get(value, value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def write_excel(sheets: Iterable[tuple[str, pa.Table]], path: Path, title_date: dt.date) -> Path:
    """Excel with Chinese headers, yuan with 2 decimals; document date fixed (reproducible).

    Sheets longer than Excel's row limit continue on numbered sheets.
    """
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, **EXCEL_OPTIONS})
    stamp = dt.datetime(title_date.year, title_date.month, title_date.day)
    wb.set_properties({"created": stamp, "title": path.stem, "author": "OpenDIP"})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    yuan = wb.add_format({"num_format": "#,##0.00"})
    limit = 1_000_000
    for name, table in sheets:
        cols = table.column_names
        for part, start in enumerate(range(0, max(table.num_rows, 1), limit)):
            ws = wb.add_worksheet(name if part == 0 else f"{name}{part + 1}")
            for j, c in enumerate(cols):
                label = LABELS.get(c, c)
                if c.endswith("_fen"):
                    label += "(元)"
                ws.write(0, j, label, head)
                ws.set_column(j, j, 14 if c != "explanation" else 80)
            chunk = table.slice(start, limit)
            pylist = {c: chunk.column(c).to_pylist() for c in cols}
            for i in range(chunk.num_rows):
                for j, c in enumerate(cols):
                    v = _cell(c, pylist[c][i])
                    if v is None:
                        continue
                    if c.endswith("_fen"):
                        ws.write_number(i + 1, j, v, yuan)
                    else:
                        ws.write(i + 1, j, v)
            ws.freeze_panes(1, 0)
    wb.close()
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json(data: dict[str, Any], path: Path) -> Path:
    path.write_text(
        json.dumps(_jsonable(data), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return path


def write_manifest(
    out: Path,
    *,
    command: str,
    inputs: dict[str, Path | None],
    policy: PolicyFile,
    parameters: dict[str, Any],
    row_counts: dict[str, int],
    outputs: list[Path],
) -> Path:
    """manifest.json: input and policy hashes, code version, parameters, row counts, and the
    hash of every output (no timestamps: a rerun must be byte-identical)."""
    final = policy.periods()[-1][2]
    data = {
        "command": command,
        "code": {"opendip_version": opendip.__version__, "git_commit": git_commit()},
        "policy": {
            "file": Path(policy.source).name,
            "sha256": policy.sha256,
            "region": final.region.code,
            "year": final.year,
            "version": final.version,
            "versions_in_force": [
                {"from": s, "to": e, "version": p.version} for s, e, p in policy.periods()
            ],
        },
        "inputs": {
            k: {"file": Path(v).name, "sha256": sha256_file(v)}
            for k, v in sorted(inputs.items())
            if v is not None
        },
        "parameters": parameters,
        "row_counts": row_counts,
        "outputs": {p.name: sha256_file(p) for p in sorted(outputs)},
        "rounding": "金额以分为单位，四舍五入（half up）到分；分值按政策小数位四舍五入",
    }
    return write_json(data, out / "manifest.json")


class OutputIntegrityError(ValueError):
    """A run directory whose outputs do not match its manifest (Chinese message)."""


_HASHES: dict[tuple[str, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    """sha256 of `path`, remembered per (path, size, mtime) so pages can verify often."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        if len(_HASHES) > 4096:
            _HASHES.clear()
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def verify_outputs(run_dir: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every output the manifest records against its SHA-256; the manifest, or
    `OutputIntegrityError` naming the missing or changed files. Every reader of a settlement
    run (reports, publication, the platform) calls this before using the run."""
    run_dir = Path(run_dir)
    if manifest is None:
        path = run_dir / "manifest.json"
        if not path.is_file():
            raise OutputIntegrityError(
                f"结算运行目录 {run_dir} 缺少 manifest.json：运行未完成或已损坏，不能使用其结果"
            )
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OutputIntegrityError(f"无法读取结算运行清单 {path}：{exc}") from exc
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, dict) or not outputs:
        raise OutputIntegrityError(f"结算运行清单 {run_dir / 'manifest.json'} 没有记录输出文件")
    problems = []
    for name, sha in sorted(outputs.items()):
        target = run_dir / name
        if Path(name).name != name or not target.is_file():
            problems.append(f"{name}（缺失）")
        elif _cached_sha256(target) != sha:
            problems.append(f"{name}（内容与清单不符）")
    if problems:
        raise OutputIntegrityError(
            f"结算运行目录 {run_dir} 的输出文件与运行清单不一致：{'、'.join(problems)}；"
            "结果可能被改动，已拒绝使用（请重新运行结算）"
        )
    return manifest


@contextmanager
def staged_directory(out: Path, manifest_name: str = "manifest.json") -> Iterator[Path]:
    """Write a run's outputs into a fresh staging directory inside `out`; only when the
    block completes are they moved into `out`, the manifest (`manifest_name`) last. Before
    the first move the old manifest is removed, so at every instant `out` is either a
    complete run (manifest matching its outputs) or visibly incomplete (no manifest): a
    killed run never leaves an old manifest beside new outputs. On an error the staging
    directory is removed and `out` is untouched."""
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    manifest = out / manifest_name
    manifest.unlink(missing_ok=True)
    for item in sorted(stage.iterdir()):
        if item.name == manifest_name:
            continue
        target = out / item.name
        if target.is_dir() and not item.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    if (stage / manifest_name).exists():
        os.replace(stage / manifest_name, manifest)
    shutil.rmtree(stage, ignore_errors=True)


def yuan(fen: int) -> str:
    return f"{Decimal(int(fen)) / 100:,.2f}"


def _prepayment_lines(r: dict, ok: str) -> list[str]:
    """The clearing payment line, with the prepayment (预付金) when there is one."""
    if not r.get("prepaid_fen") and not r.get("prepaid_without_line_fen"):
        return [
            f"- 清算应付总额 {yuan(r['clearing_total_fen'])} 元 − 已预付 {yuan(r['advances_fen'])} 元 = "
            f"清算应拨付 {yuan(r['clearing_payment_fen'])} 元（各医疗机构合计，逐分相符：{ok}）"
        ]
    cash = "成立" if r.get("cash_identity") else "不成立！"
    lines = [
        f"- 预付金：年初预付 {yuan(r['prepaid_fen'])} 元，月度预付中扣回 "
        f"{yuan(r['prepayment_recovered_fen'])} 元，清算时扣回 "
        f"{yuan(r['prepayment_outstanding_fen'])} 元",
        f"- 清算应付总额 {yuan(r['clearing_total_fen'])} 元 − 已预付 {yuan(r['advances_fen'])} 元 − "
        f"清算扣回预付金 {yuan(r['prepayment_outstanding_fen'])} 元 = 清算应拨付 "
        f"{yuan(r['clearing_payment_fen'])} 元（各医疗机构合计，逐分相符：{ok}）",
        f"- 全年拨付：年初预付金 + 月度预付 − 扣回 + 清算应拨付 = 清算应付总额（{cash}）",
    ]
    if r.get("prepaid_without_line_fen"):
        lines.append(
            f"- 另有本年无 DIP 病例的医疗机构年初预付金 {yuan(r['prepaid_without_line_fen'])} 元，"
            "无月度预付可扣，清算时全额收回（逐家见 prepaid_without_line.parquet）"
        )
    return lines


def special_rules_line(counts: dict[str, int]) -> str:
    """One Chinese line: cases and money of 中医优势病种 and 新技术新项目 (clearing counts)."""
    return (
        f"- 特殊支付规则：中医/民族医优势病种 {counts.get('tcm_cases', 0)} 例，DIP 金额 "
        f"{yuan(counts.get('tcm_dip_fen', 0))} 元；新技术新项目加分 "
        f"{counts.get('new_tech_cases', 0)} 例，DIP 金额 {yuan(counts.get('new_tech_dip_fen', 0))} 元；"
        f"新技术新项目按项目付费 {counts.get('new_tech_by_item_cases', 0)} 例，按项目统筹支付 "
        f"{yuan(counts.get('new_tech_by_item_ffs_fen', 0))} 元"
    )


def reconciliation_markdown(
    pools: pa.Table, year: int | str, counts: dict[str, int] | None = None
) -> str:
    """The reconciliation report (对账报告) in Chinese."""
    lines = [f"# {year} DIP 清算对账报告", ""]
    if counts is not None:
        lines += [special_rules_line(counts), ""]
    for r in pools.to_pylist():
        label = INSURANCE_TYPE_LABELS.get(r["pool"], r["pool"])
        ok = "一致" if r["cases_equal_hospitals"] and r["clearing_identity"] else "不一致"
        lines += [
            f"## {label}（{r['pool']}）",
            "",
            f"- 年度预算 {yuan(r['budget_fen'])} 元 = 调剂金 {yuan(r['reserve_fen'])} 元 + "
            f"扣除的非 DIP 病例按项目支付 {yuan(r['non_dip_deducted_fen'])} 元 + "
            f"DIP 可分配基金 {yuan(r['available_fen'])} 元；非 DIP 病例 {r['non_dip_cases']} 例，"
            f"按项目统筹支付 {yuan(r['non_dip_ffs_fen'])} 元"
            f"{'' if r['non_dip_deducted_fen'] == r['non_dip_ffs_fen'] else '（未从 DIP 基金中扣除）'}",
            f"- 点值公式 {ENUM_LABELS['point_value_formula'].get(r['point_value_formula'])}：分子 {yuan(r['point_value_target_fen'])} 元 ÷ "
            f"总结算分值 {r['total_score']} = 结算点值 {r['point_value']} 元/分",
            f"- DIP 总金额：病例合计 {yuan(r['dip_amount_cases_fen'])} 元，医疗机构合计 "
            f"{yuan(r['dip_amount_hospitals_fen'])} 元（{ok}）；与点值分子的舍入差 "
            f"{yuan(r['rounding_residual_fen'])} 元",
            f"- 统筹基金应支付 {yuan(r['fund_payable_fen'])} 元；按项目付费 {yuan(r['ffs_fund_fen'])} 元；"
            f"结余 {r['hospitals_in_surplus']} 家，超支 {r['hospitals_in_deficit']} 家，持平 "
            f"{r['hospitals_balanced']} 家",
            f"- 结余留用/超支分担比较基数：{FFS_BASIS_LABELS.get(r['ffs_basis'], r['ffs_basis'])}",
            f"- 区域调剂金：期初 {yuan(r['reserve_opening_fen'])} 元 − 使用（超支分担）"
            f"{yuan(r['reserve_uses_fen'])} 元 + 收回 {yuan(r['reserve_returns_fen'])} 元 = 期末 "
            f"{yuan(r['reserve_closing_fen'])} 元"
            f"{'（不足！）' if r['reserve_closing_fen'] < 0 else ''}",
            f"- 结余留用封顶收回 {yuan(r['surplus_cap_fen'])} 元、扣减保证金 "
            f"{yuan(r['deposit_deducted_fen'])} 元，其中回到调剂金 {yuan(r['reserve_returns_fen'])} 元，"
            f"留在统筹基金 {yuan(r['kept_in_fund_fen'])} 元",
            f"- 质量保证金 {yuan(r['withheld_fen'])} 元，返还 {yuan(r['returned_fen'])} 元，扣减 "
            f"{yuan(r['deposit_deducted_fen'])} 元",
            *_prepayment_lines(r, ok),
            "",
        ]
    return "\n".join(lines)
