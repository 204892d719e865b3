"""Grouping one case in memory (事前预分组), with an explanation.

`GroupingIndex` is built once from the directory, the policy and the code tables; `group_case`
then follows exactly the batch steps of `opendip.grouping.batch` (a property test holds the two
equal) and says why: every code's role, every step tried, every candidate that lost a tie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pyarrow as pa

from opendip.codes import CodeTables, diagnosis_block, diagnosis_category, diagnosis_chapter
from opendip.codes.hierarchy import diagnosis_subcategory
from opendip.directory.auxiliary import AuxiliaryDirectory, auxiliary_for_policy
from opendip.directory.keys import TYPE_LABEL, counted_types, surgical_types, type_of
from opendip.directory.matching import CoreRow, Match, match_row, row_codes, tie_key
from opendip.grouping.batch import LEVEL_LABEL, REASONS
from opendip.policy import Policy

RULE_LABEL = {
    "most_procedures_matched": "匹配手术操作最多者优先",
    "closest_mean_cost": "次均费用最接近本病例费用者优先",
    "highest_score": "分值最高者优先",
    "main_procedure_first": "含主要手术操作者优先",
    "exact_match_first": "手术操作完全一致者优先",
}


@dataclass
class GroupResult:
    case_id: str
    group_code: str | None
    group_type: str
    base_score: Decimal | None
    aux_coefficient: Decimal | None
    match_step: str
    reason: str
    explanation: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "group_code": self.group_code,
            "group_type": self.group_type,
            "base_score": self.base_score,
            "aux_coefficient": self.aux_coefficient,
            "match_step": self.match_step,
            "reason": self.reason,
        }


class GroupingIndex:
    """In-memory lookup tables for single-case grouping."""

    def __init__(
        self,
        directory: pa.Table,
        policy: Policy,
        codes: CodeTables,
        auxiliary: AuxiliaryDirectory | None = None,
    ) -> None:
        self.policy = policy
        #: an auxiliary directory file replacing the policy's coefficients (default: the file
        #: named by directory.auxiliary.file; None: the policy's coefficients)
        self.auxiliary = auxiliary if auxiliary is not None else auxiliary_for_policy(policy)
        ranks = {name: i for i, name in enumerate(policy.grouping.procedure_type_order)}
        types = type_of(policy)
        surgical = surgical_types(policy)
        pairs = list(
            zip(
                codes.procedures["code"].to_pylist(),
                codes.procedures["procedure_type"].to_pylist(),
                strict=True,
            )
        )
        self.rank: dict[str, int] = {}
        for c, t in pairs:  # a code listed twice: its most intensive type
            self.rank[c] = max(self.rank.get(c, 0), ranks[types.get(t, "diagnostic")])
        self.surgical = {c for c, t in pairs if t in surgical}
        counted = counted_types(policy)
        #: codes that count for grouping (known, of a counted type)
        self.counted = {c for c, t in pairs if t in counted}
        #: main diagnosis code → valid as main (a code listed twice is valid only if both say so)
        self.valid_as_main: dict[str, bool] = {}
        for c, v in zip(
            codes.diagnoses["code"].to_pylist(),
            codes.diagnoses["valid_as_main"].to_pylist(),
            strict=True,
        ):
            self.valid_as_main[c] = self.valid_as_main.get(c, True) and v is not False
        self.type_by_rank = {i: name for name, i in ranks.items()}
        self.core: dict[str, list[CoreRow]] = {}
        self.comprehensive: dict[tuple[str, str], tuple[str, Decimal]] = {}
        self.special_score: dict[str, Decimal | None] = {}
        for r in directory.to_pylist():
            if r["group_type"] in ("core", "basic"):
                procs = row_codes(r["procedure_key"])
                self.core.setdefault(r["diagnosis_key"], []).append(
                    CoreRow(
                        r["group_code"],
                        r["group_type"],
                        procs,
                        r["procedure_match"],
                        r["score"],
                        r["mean_cost_fen"],
                    )
                )
            elif r["group_type"] == "comprehensive":
                self.comprehensive[(r["diagnosis_key"], r["procedure_key"])] = (
                    r["group_code"],
                    r["score"],
                )
            elif r["group_type"] == "special":
                self.special_score[r["group_code"]] = r["score"]

    @classmethod
    def build(
        cls,
        directory: pa.Table,
        policy: Policy,
        codes: CodeTables,
        auxiliary: AuxiliaryDirectory | None = None,
    ) -> GroupingIndex:
        return cls(directory, policy, codes, auxiliary)

    # -- keys ---------------------------------------------------------------------------
    def dx_key(self, code: str) -> str:
        if self.policy.directory.diagnosis_level == "category":
            return diagnosis_category(code)
        return diagnosis_subcategory(code)

    def raw_procedures(self, case: dict[str, Any]) -> list[str]:
        """The case's procedure codes, not ignored, sorted, each once."""
        raw = [case.get("main_procedure"), *(case.get("other_procedures") or [])]
        ignore = tuple(self.policy.grouping_ignored_prefixes())
        return sorted({p for p in raw if p is not None and not (ignore and p.startswith(ignore))})

    def procedures(self, case: dict[str, Any]) -> list[str]:
        """The codes that count for grouping (see `opendip.directory.keys.with_keys`)."""
        return [p for p in self.raw_procedures(case) if p in self.counted]

    def proc_type(self, procs: list[str]) -> str:
        known = [self.rank[p] for p in procs if p in self.counted]
        if not known:
            return "conservative"
        return self.type_by_rank[max(known)]


def _prefix(code: str | None, prefixes: list[str]) -> bool:
    return code is not None and bool(prefixes) and code.startswith(tuple(prefixes))


def _aux(case: dict[str, Any], policy: Policy, known: dict[str, bool]) -> Decimal:
    """Auxiliary coefficient; other diagnoses missing from the code table (`known`) are
    ignored."""
    aux = policy.directory.auxiliary
    coef = Decimal(1)
    age = case.get("age")
    for band in aux.age_bands:
        if (band.min_age_years is None or (age is not None and age >= band.min_age_years)) and (
            band.max_age_years is None or (age is not None and age <= band.max_age_years)
        ):
            coef *= band.coefficient
            break
    others = [d for d in case.get("other_diagnoses") or [] if d in known]
    if aux.comorbidity_levels and aux.comorbidity_prefixes:
        matches = sum(1 for d in others if _prefix(d, aux.comorbidity_prefixes))
        for lv in sorted(aux.comorbidity_levels, key=lambda lv: lv.min_matches, reverse=True):
            if matches >= lv.min_matches:
                coef *= lv.coefficient
                break
    metastasis = aux.tumour_metastasis_prefixes and aux.tumour_metastasis_coefficient
    if metastasis and any(_prefix(d, aux.tumour_metastasis_prefixes) for d in others):
        coef *= aux.tumour_metastasis_coefficient  # type: ignore[operator]
    return coef.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _special_matches(case: dict[str, Any], procs: list[str], sg) -> bool:
    if sg.diagnosis_prefixes and not _prefix(case.get("main_diagnosis"), sg.diagnosis_prefixes):
        return False
    if sg.procedure_prefixes and not any(_prefix(p, sg.procedure_prefixes) for p in procs):
        return False
    if sg.departments and case.get("department") not in sg.departments:
        return False
    los = case.get("los_days")
    return not (sg.max_los_days and (10**6 if los is None else los) > sg.max_los_days)


def group_case(case: dict[str, Any], index: GroupingIndex, blocked: bool = False) -> GroupResult:
    """Group one case (a dict in the `cases` contract); `blocked` = QC found a blocking error.

    Never raises on codes: unknown or refused codes give an 'unmatched' result with the reason.
    """
    policy = index.policy
    explain: list[str] = []
    main = case["main_diagnosis"]
    dx_key = index.dx_key(main)
    procs = index.procedures(case)
    proc_type = index.proc_type(procs)
    surgical = [p for p in procs if p in index.surgical]
    ignore = tuple(policy.grouping.ignore_procedure_prefixes)
    tcm = () if policy.grouping.tcm_treatments_counted else tuple(policy.tcm_treatment_prefixes())
    nfg = policy.grouping.not_for_grouping
    level = "亚目" if policy.directory.diagnosis_level == "subcategory" else "类目"
    explain.append(f"主要诊断 {main} → 诊断键 {dx_key}（{level}），决定病种的诊断")
    for p in [case.get("main_procedure"), *(case.get("other_procedures") or [])]:
        if p is None:
            continue
        if ignore and p.startswith(ignore):
            explain.append(f"手术操作 {p}：属政策忽略的操作，不参与分组")
        elif tcm and p.startswith(tcm):
            explain.append(
                f"手术操作 {p}：属政策所列中医/民族医治疗，按政策不计入分组（不改变保守治疗的入组）"
            )
        elif p not in index.rank:
            explain.append(f"手术操作 {p}：不在医保版手术操作代码表中，不参与分组（质控提示）")
        elif p not in index.counted:
            explain.append(f"手术操作 {p}：该操作类别按政策不计入分组")
        elif _prefix(p, nfg.procedure_prefixes):
            explain.append(f"手术操作 {p}：属不入组规则")
        else:
            explain.append(
                f"手术操作 {p}：参与分组（{'手术/介入' if p in index.surgical else '非手术操作'}）"
            )
    for d in case.get("other_diagnoses") or []:
        if d in index.valid_as_main:
            explain.append(f"其他诊断 {d}：不决定病种，仅用于辅助目录系数")
        else:
            explain.append(f"其他诊断 {d}：不在医保版疾病诊断代码表中，忽略（质控提示）")
    explain.append(f"操作类别（最高强度）：{TYPE_LABEL[proc_type]}")

    def done(
        group_type: str, code: str | None, score: Decimal | None, step: str, reason: str
    ) -> GroupResult:
        if group_type == "special":
            score = index.special_score.get(code)  # type: ignore[arg-type]
        aux = None
        if code is not None:
            core = group_type == "core"
            if core and index.auxiliary is not None:
                aux, impacts = index.auxiliary.apply(case, index.valid_as_main)
                explain.extend(f"辅助目录（{index.auxiliary.name}）：{line}" for line in impacts)
                explain.append(f"辅助目录系数 {aux}")
            else:
                aux = _aux(case, policy, index.valid_as_main) if core else Decimal("1.0000")
                if group_type == "core" and aux != 1:
                    explain.append(f"辅助目录系数 {aux}（年龄、合并症、肿瘤转移）")
        explain.append(f"结论：{reason}" + (f"（{code}）" if code else ""))
        return GroupResult(case["case_id"], code, group_type, score, aux, step, reason, explain)

    if blocked:
        return done("unmatched", None, None, "qc_excluded", REASONS["qc_excluded"])
    valid = index.valid_as_main.get(main)
    if valid is None:
        reason = REASONS["unknown_diagnosis"].format(code=main)
        return done("unmatched", None, None, "unknown_code", reason)
    if not valid:
        reason = REASONS["invalid_main"].format(code=main)
        return done("unmatched", None, None, "not_for_grouping", reason)
    if _prefix(main, nfg.main_diagnosis_prefixes):
        reason = REASONS["nfg_diagnosis"].format(code=main)
        return done("unmatched", None, None, "not_for_grouping", reason)
    refused = [p for p in procs if _prefix(p, nfg.procedure_prefixes)]
    if refused:
        reason = REASONS["nfg_procedures"].format(codes="、".join(refused))
        return done("unmatched", None, None, "not_for_grouping", reason)

    for kind in policy.grouping.kind_precedence:
        if kind == "special":
            for sg in policy.directory.special_groups:
                if _special_matches(case, procs, sg):
                    explain.append(f"特殊病种 {sg.code}（{sg.name}）：条件满足")
                    return done("special", sg.code, None, "special", REASONS["special"])
                explain.append(f"特殊病种 {sg.code}（{sg.name}）：条件不满足")
        elif kind == "core":
            best = _core(case, index, dx_key, procs, surgical, explain)
            if best is not None:
                reason = REASONS["basic"] if best.group_type == "basic" else REASONS["core"]
                return done(best.group_type, best.group_code, best.score, "core", reason)
        elif kind == "comprehensive":
            for lv in policy.directory.comprehensive.levels:
                key = {
                    "category": diagnosis_category(main),
                    "block": diagnosis_block(main),
                    "chapter": diagnosis_chapter(main),
                }[lv]
                hit = index.comprehensive.get((key, proc_type))
                if hit:
                    explain.append(
                        f"综合病种（{LEVEL_LABEL[lv]} {key}，{TYPE_LABEL[proc_type]}）：入选 {hit[0]}"
                    )
                    reason = REASONS["comprehensive"].format(level=LEVEL_LABEL[lv])
                    return done("comprehensive", hit[0], hit[1], "comprehensive", reason)
                explain.append(
                    f"综合病种（{LEVEL_LABEL[lv]} {key}，{TYPE_LABEL[proc_type]}）：目录中无此组"
                )
    fb = policy.grouping.fallback
    if fb.mode == "blank_group":
        reason = REASONS["fallback"].format(name=fb.name)
        return done("fallback", fb.group_code, None, "fallback", reason)
    return done("unmatched", None, None, "unmatched", REASONS["unmatched"])


def _core(
    case: dict[str, Any],
    index: GroupingIndex,
    dx_key: str,
    procs: list[str],
    surgical: list[str],
    explain: list[str],
) -> CoreRow | None:
    rows = index.core.get(dx_key, [])
    if not rows:
        explain.append(f"核心病种：诊断键 {dx_key} 在目录中没有核心或基层病种")
        return None
    policy = index.policy
    cost = case["total_cost"]
    rules = policy.grouping.tie_break
    candidates: list[tuple[tuple, Match]] = []
    for row in rows:
        m = match_row(row, procs, surgical, case.get("main_procedure"), policy)
        if m is None:
            if row.match == "none":
                explain.append(
                    f"核心病种 {row.group_code}：保守治疗病种只收无计入分组的手术操作的病例"
                )
            else:
                explain.append(f"核心病种 {row.group_code}：手术操作条件不满足")
            continue
        candidates.append((tie_key(m, cost, rules), m))
    if not candidates:
        if procs:
            explain.append("核心病种：病例的手术操作与该诊断的核心病种均不匹配")
        return None
    candidates.sort(key=lambda c: c[0])
    winner_key, winner = candidates[0]
    labels = ["conservative", *rules, "group_code"]
    for key, m in candidates[1:]:
        decided = next(i for i, (a, b) in enumerate(zip(winner_key, key, strict=True)) if a != b)
        rule = labels[decided]
        if rule == "conservative":
            text = "已有匹配手术操作的病种，保守治疗病种不入选"
        else:
            text = RULE_LABEL.get(rule, "按病种编码排序")
        explain.append(f"候选病种 {m.row.group_code} 落选：{text}")
    if winner.conservative and procs:
        explain.append("病例的手术无匹配病种，按政策（未列出手术不转综合病种）入保守治疗病种")
    explain.append(f"核心病种 {winner.row.group_code}：入选（分值 {winner.row.score}）")
    return winner.row
