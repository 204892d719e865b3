"""Confirmed supervision findings that change money at the annual clearing (监管结果应用).

A finding is a supervision lead the agency confirmed, with its decision recorded and the
adjustment it carries. Only rows with `status = confirmed` change anything; any other row
(open, assigned, rejected …) is listed nowhere and changes nothing. Three kinds:

- `regroup` (高套改组): the case is settled in `target_group_code` (its directory score and
  type) instead of the group it was coded into;
- `merge` (分解住院合并): the case is merged into `merge_into` (the first stay): its costs,
  payments and days are added to that case, and it is no longer settled on its own;
- `deduct` (扣款): `amount_yuan` is deducted from the hospital's clearing payment in the
  case's pool (or the row's `pool` when no case is named); the money stays in the fund.

Rule steps: `case_findings` (before scoring: regroup, merge) and `deductions` (after the
clearing: per hospital × pool, clearing total and payment reduced; reconciliation extended).
Both work on Ibis tables; the findings file itself is small (one row per decision).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from opendip.contract.tables import CASES
from opendip.engine import table_from_arrow
from opendip.settlement.errors import InputDataError
from opendip.settlement.output import LABELS

LABELS.update(
    {
        "findings_applied": "应用监管结果数",
        "findings_deducted_fen": "监管扣款",
    }
)

KINDS = {"regroup": "改入病种", "merge": "合并分解住院", "deduct": "扣减金额"}
#: Settlement-list columns added together when two stays are merged (money in fen, days).
MERGED_SUMS = (*(c.name for c in CASES.columns if c.unit == "fen"), "los_days", "icu_days")

FINDING_SCHEMA = pa.schema(
    [
        ("finding_id", pa.string()),
        ("lead_id", pa.string()),
        ("hospital_id", pa.string()),
        ("kind", pa.string()),
        ("case_id", pa.string()),
        ("pool", pa.string()),
        ("target_group_code", pa.string()),
        ("merge_into", pa.string()),
        ("amount_fen", pa.int64()),
        ("decision", pa.string()),
        ("status", pa.string()),
    ]
)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def normalise_findings(table: pa.Table, source: str = "findings") -> pa.Table:
    """The findings file as FINDING_SCHEMA, every problem named with its row and field.

    Required: finding_id (or lead_id), hospital_id, kind, status, decision; regroup needs
    case_id and target_group_code; merge needs case_id and merge_into; deduct needs
    amount_yuan > 0 (2 decimals) and case_id or pool."""
    cols = set(table.column_names)
    for need in ("hospital_id", "kind", "status"):
        if need not in cols:
            raise InputDataError(source, need, "监管结果表缺少列")
    problems: list[str] = []
    rows = []
    seen: set[str] = set()
    for i, r in enumerate(table.to_pylist(), start=2):  # row 1 is the header
        fid = _text(r.get("finding_id")) or _text(r.get("lead_id"))
        kind = _text(r.get("kind"))
        status = _text(r.get("status"))
        where = f"第 {i} 行"
        if fid is None:
            problems.append(f"{where} finding_id：缺少编号")
            continue
        if fid in seen:
            problems.append(f"{where} finding_id：编号 {fid} 重复")
        seen.add(fid)
        if kind not in KINDS:
            problems.append(f"{where} kind：{kind!r} 不是 {'/'.join(KINDS)} 之一")
            continue
        if _text(r.get("hospital_id")) is None:
            problems.append(f"{where} hospital_id：缺少医疗机构代码")
        amount = None
        if status == "confirmed":
            if not _text(r.get("decision")):
                problems.append(f"{where} decision：已确认的监管结果须记录处理决定")
            if kind in ("regroup", "merge") and not _text(r.get("case_id")):
                problems.append(f"{where} case_id：{KINDS[kind]}须指明病例")
            if kind == "regroup" and not _text(r.get("target_group_code")):
                problems.append(f"{where} target_group_code：改入病种须给出病种编码")
            if kind == "merge":
                into = _text(r.get("merge_into"))
                if not into:
                    problems.append(f"{where} merge_into：合并分解住院须给出合并到的病例")
                elif into == _text(r.get("case_id")):
                    problems.append(f"{where} merge_into：不能合并到自身")
            if kind == "deduct":
                raw = r.get("amount_yuan", r.get("amount_fen"))
                try:
                    yuan = Decimal(str(raw).strip())
                    if "amount_yuan" not in r:
                        yuan = yuan / 100
                    if not yuan.is_finite() or yuan <= 0 or yuan != yuan.quantize(Decimal("0.01")):
                        raise InvalidOperation
                    amount = int(yuan * 100)
                except (InvalidOperation, ValueError, TypeError):
                    problems.append(
                        f"{where} amount_yuan：扣减金额须为大于 0 的金额（元，两位小数），当前 {raw!r}"
                    )
                if not _text(r.get("case_id")) and not _text(r.get("pool")):
                    problems.append(f"{where} pool：扣款未指明病例时须给出险种")
        rows.append(
            {
                "finding_id": fid,
                "lead_id": _text(r.get("lead_id")),
                "hospital_id": _text(r.get("hospital_id")),
                "kind": kind,
                "case_id": _text(r.get("case_id")),
                "pool": _text(r.get("pool")),
                "target_group_code": _text(r.get("target_group_code")),
                "merge_into": _text(r.get("merge_into")),
                "amount_fen": amount,
                "decision": _text(r.get("decision")) or "",
                "status": status or "",
            }
        )
    if problems:
        raise InputDataError(source, "；".join(problems[:10]), "监管结果表有误")
    return pa.Table.from_pylist(rows, schema=FINDING_SCHEMA)


def confirmed(findings: pa.Table) -> pa.Table:
    return findings.filter(pc.equal(findings.column("status"), "confirmed"))


def _examples(t: ir.Table, col: str) -> list[str]:
    return [str(v) for v in t.select(col).limit(5).to_pyarrow().column(0).to_pylist()]


@dataclass
class CaseFindings:
    """The year's cases and grouping with confirmed regroup/merge findings applied."""

    cases: ir.Table
    grouped: ir.Table
    merged_away: int


def case_findings(
    cases: ir.Table, grouped: ir.Table, directory: ir.Table, findings: pa.Table
) -> CaseFindings:
    """Rule step "findings: regroup and merge" (before scoring), on confirmed findings."""
    con = cases._find_backend()
    f = table_from_arrow(con, confirmed(findings), "opendip_findings")
    merges = f.filter(f.kind == "merge").select(
        m_case=f.case_id, m_into=f.merge_into, m_hospital=f.hospital_id, m_id=f.finding_id
    )
    regroups = f.filter(f.kind == "regroup").select(
        r_case=f.case_id, r_target=f.target_group_code, r_id=f.finding_id, r_hospital=f.hospital_id
    )
    # Every named case must be a case of this clearing at the hospital named.
    named = ibis.union(
        merges.select(case_id=merges.m_case, hospital_id=merges.m_hospital, fid=merges.m_id),
        merges.select(case_id=merges.m_into, hospital_id=merges.m_hospital, fid=merges.m_id),
        regroups.select(
            case_id=regroups.r_case, hospital_id=regroups.r_hospital, fid=regroups.r_id
        ),
    )
    known = cases.select(k_case=cases.case_id, k_hospital=cases.hospital_id)
    bad = named.left_join(known, named.case_id == known.k_case)
    bad = bad.filter(bad.k_case.isnull() | (bad.k_hospital != bad.hospital_id))
    if bad.count().to_pyarrow().as_py():
        raise InputDataError(
            "findings", "case_id", "监管结果所指病例不在本次清算中或不属于所列医疗机构",
            _examples(bad, "fid"),
        )  # fmt: skip
    twice = merges.group_by("m_case").aggregate(n=merges.count()).filter(lambda t: t.n > 1)
    if twice.count().to_pyarrow().as_py():
        raise InputDataError(
            "findings", "case_id", "同一病例被合并到多个病例", _examples(twice, "m_case")
        )
    other = merges.select(o_case=merges.m_case)
    chained = merges.join(other, merges.m_into == other.o_case)
    if chained.count().to_pyarrow().as_py():
        raise InputDataError(
            "findings", "merge_into", "合并到的病例本身又被合并（请合并到首次住院）",
            _examples(chained, "m_id"),
        )  # fmt: skip
    targets = directory.select(d_code=directory.group_code)
    unknown = regroups.anti_join(targets, regroups.r_target == targets.d_code)
    if unknown.count().to_pyarrow().as_py():
        raise InputDataError(
            "findings", "target_group_code", "改入的病种不在病种目录中", _examples(unknown, "r_id")
        )

    # Merge: sums of the merged stays onto the first stay; the merged stays leave.
    present = [c for c in MERGED_SUMS if c in cases.columns]
    src = cases.join(merges, cases.case_id == merges.m_case)
    add = src.group_by(a_case=src.m_into).aggregate(
        **{f"a_{c}": src[c].cast("int64").fill_null(0).sum() for c in present},
        a_discharge=src.discharge_date.max(),
    )
    kept = cases.anti_join(merges, cases.case_id == merges.m_case)
    j = kept.left_join(add, kept.case_id == add.a_case)
    j = j.mutate(
        **{
            c: ibis.ifelse(j.a_case.notnull(), (j[c].fill_null(0) + j[f"a_{c}"]), j[c]).cast(
                cases[c].type()
            )
            for c in present
        },
        discharge_date=ibis.ifelse(
            j.a_discharge.notnull() & (j.a_discharge > j.discharge_date),
            j.a_discharge,
            j.discharge_date,
        ),
    )
    new_cases = j.select(*cases.columns)

    # Regroup: the target group's code, type and score; the coding's auxiliary coefficient.
    d = directory.select(
        t_code=directory.group_code, t_type=directory.group_type, t_score=directory.score
    )
    rg = regroups.join(d, regroups.r_target == d.t_code)
    g = grouped.anti_join(merges, grouped.case_id == merges.m_case)
    g = g.left_join(rg, g.case_id == rg.r_case)
    hit = g.r_case.notnull()
    out = {
        "group_code": ibis.ifelse(hit, g.t_code, g.group_code),
        "group_type": ibis.ifelse(hit, g.t_type, g.group_type),
        "base_score": ibis.ifelse(hit, g.t_score.cast(grouped.base_score.type()), g.base_score),
    }
    if "match_step" in grouped.columns:
        out["match_step"] = ibis.ifelse(hit, "supervision_finding", g.match_step)
    if "reason" in grouped.columns:
        out["reason"] = ibis.ifelse(
            hit, "监管结果 " + g.r_id + "：经确认改入病种 " + g.t_code, g.reason
        )
    g = g.mutate(**out).select(*grouped.columns)
    n_merged = merges.count().to_pyarrow().as_py()
    return CaseFindings(new_cases, g, int(n_merged))


def deductions(hospitals: pa.Table, pools: pa.Table, findings: pa.Table, con: Any,
               cases: ir.Table) -> tuple[pa.Table, pa.Table]:  # fmt: skip
    """Rule step "findings: deductions" (after the clearing): per hospital × pool, the
    confirmed deductions and the number of findings applied; clearing total and payment
    reduced by the deduction; the pool's reconciliation extended by the same amounts."""
    f = table_from_arrow(con, confirmed(findings), "opendip_findings_d")
    pools_of = cases.select(p_case=cases.case_id, p_pool=cases.insurance_type.cast("string"))
    f = f.left_join(pools_of, f.case_id == pools_of.p_case)
    f = f.mutate(pool=f.p_pool.fill_null(f.pool))
    per = f.group_by(["hospital_id", "pool"]).aggregate(
        findings_applied=f.count(),
        findings_deducted_fen=ibis.ifelse(f.kind == "deduct", f.amount_fen, 0).sum().cast("int64"),
    )
    h = table_from_arrow(con, hospitals, "opendip_cleared")
    orphan = per.anti_join(h, ["hospital_id", "pool"])
    if orphan.count().to_pyarrow().as_py():
        raise InputDataError(
            "findings", "hospital_id/pool", "监管结果所列医疗机构在该险种本年度无 DIP 清算",
            _examples(orphan, "hospital_id"),
        )  # fmt: skip
    j = h.left_join(per, ["hospital_id", "pool"]).drop("hospital_id_right", "pool_right")
    j = j.mutate(
        findings_applied=j.findings_applied.fill_null(0).cast("int64"),
        findings_deducted_fen=j.findings_deducted_fen.fill_null(0).cast("int64"),
    )
    j = j.mutate(
        clearing_total_fen=j.clearing_total_fen - j.findings_deducted_fen,
        clearing_payment_fen=j.clearing_payment_fen - j.findings_deducted_fen,
    )
    cols = list(hospitals.column_names)
    at = cols.index("clearing_total_fen")
    cols[at:at] = ["findings_applied", "findings_deducted_fen"]
    new_h = j.select(*cols).order_by(["hospital_id", "pool"]).to_pyarrow()
    rows = []
    for p in pools.to_pylist():
        hs = new_h.filter(pc.equal(new_h.column("pool"), p["pool"]))

        def hsum(col: str, hs: pa.Table = hs) -> int:
            return int(pc.sum(hs.column(col)).as_py() or 0)

        deducted = hsum("findings_deducted_fen")
        p = dict(p)
        before = p["clearing_total_fen"]
        p["findings_deducted_fen"] = deducted
        p["clearing_total_fen"] = hsum("clearing_total_fen")
        p["clearing_payment_fen"] = hsum("clearing_payment_fen")
        if "kept_in_fund_fen" in p:
            p["kept_in_fund_fen"] += deducted
        # The identity held before this step; it still holds with the deduction taken off.
        p["clearing_identity"] = bool(p["clearing_identity"]) and (
            p["clearing_total_fen"] == before - deducted
        )
        rows.append(p)
    return new_h, pa.Table.from_pylist(rows)


def listing(findings: pa.Table, con: Any, cases: ir.Table, case_table: ir.Table) -> pa.Table:
    """The confirmed findings applied, with the affected case's pool and settled result
    (the merged-away stay has none: it is paid as part of the first stay)."""
    f = table_from_arrow(con, confirmed(findings), "opendip_findings_l")
    pools_of = cases.select(p_case=cases.case_id, p_pool=cases.insurance_type.cast("string"))
    f = f.left_join(pools_of, f.case_id == pools_of.p_case)
    settled_case = ibis.ifelse(f.kind == "merge", f.merge_into, f.case_id)
    f = f.mutate(pool=f.p_pool.fill_null(f.pool), _settled_case=settled_case)
    c = case_table.select(
        s_case=case_table.case_id,
        settled_group=case_table.group_code,
        settled_score=case_table.settled_score,
        settled_dip_fen=case_table.dip_amount_fen,
    )
    j = f.left_join(c, f._settled_case == c.s_case)
    return (
        j.select(
            "finding_id",
            "lead_id",
            "hospital_id",
            "pool",
            "kind",
            kind_label=ibis.cases(*[(j.kind == k, v) for k, v in KINDS.items()], else_=j.kind),
            case_id=j.case_id,
            target_group_code=j.target_group_code,
            merge_into=j.merge_into,
            amount_fen=j.amount_fen,
            decision=j.decision,
            settled_group=j.settled_group,
            settled_score=j.settled_score,
            settled_dip_fen=j.settled_dip_fen,
        )
        .order_by(["hospital_id", "finding_id"])
        .to_pyarrow()
    )


def reconciliation_lines(pools: pa.Table, listed: pa.Table) -> str:
    """The findings paragraph of the reconciliation report (对账报告)."""
    lines = ["## 监管结果应用", ""]
    counts = {k: 0 for k in KINDS}
    for k in listed.column("kind").to_pylist():
        counts[k] += 1
    lines.append(
        "- 已确认并在本次清算中应用的监管结果："
        + "，".join(f"{KINDS[k]} {n} 条" for k, n in counts.items())
    )
    for p in pools.to_pylist():
        ok = "一致" if p["clearing_identity"] else "不一致"
        lines.append(
            f"- {p['pool']}：监管扣款 {Decimal(p['findings_deducted_fen']) / 100:,.2f} 元（留在统筹基金），"
            f"清算应付总额 = 统筹应支付 + 调剂金使用 − 结余封顶收回 − 扣减保证金 − 监管扣款（{ok}）"
        )
    return "\n".join(lines) + "\n"
