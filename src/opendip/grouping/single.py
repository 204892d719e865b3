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
from opendip.directory.keys import TYPE_LABEL, surgical_types, type_of
from opendip.grouping.batch import LEVEL_LABEL, REASONS
from opendip.policy import Policy

RULE_LABEL = {
    "most_procedures_matched": "匹配手术操作最多者优先",
    "closest_mean_cost": "次均费用最接近本病例费用者优先",
    "highest_score": "分值最高者优先",
    "main_procedure_first": "含主要手术操作者优先",
    "exact_match_first": "手术操作完全一致者优先",
}


@dataclass(frozen=True)
class CoreRow:
    group_code: str
    group_type: str
    procs: tuple[str, ...]
    match: str
    score: Decimal
    mean_cost_fen: int


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

    def __init__(self, directory: pa.Table, policy: Policy, codes: CodeTables) -> None:
        self.policy = policy
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
        self.rank = {c: ranks[types.get(t, "diagnostic")] for c, t in pairs}
        self.surgical = {c for c, t in pairs if t in surgical}
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
                key = (r["procedure_key"] or "").replace("/", "+")
                procs = tuple(p for p in key.split("+") if p)
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
    def build(cls, directory: pa.Table, policy: Policy, codes: CodeTables) -> GroupingIndex:
        return cls(directory, policy, codes)

    # -- keys ---------------------------------------------------------------------------
    def dx_key(self, code: str) -> str:
        if self.policy.directory.diagnosis_level == "category":
            return diagnosis_category(code)
        return diagnosis_subcategory(code)

    def procedures(self, case: dict[str, Any]) -> list[str]:
        raw = [case.get("main_procedure"), *(case.get("other_procedures") or [])]
        ignore = tuple(self.policy.grouping.ignore_procedure_prefixes)
        return sorted({p for p in raw if p is not None and not (ignore and p.startswith(ignore))})

    def proc_type(self, procs: list[str]) -> str:
        known = [self.rank[p] for p in procs if p in self.rank]
        if not known:
            return "conservative"
        return self.type_by_rank[max(known)]


def _prefix(code: str | None, prefixes: list[str]) -> bool:
    return code is not None and bool(prefixes) and code.startswith(tuple(prefixes))


def _aux(case: dict[str, Any], policy: Policy) -> Decimal:
    aux = policy.directory.auxiliary
    coef = Decimal(1)
    age = case.get("age")
    for band in aux.age_bands:
        if (band.min_age_years is None or (age is not None and age >= band.min_age_years)) and (
            band.max_age_years is None or (age is not None and age <= band.max_age_years)
        ):
            coef *= band.coefficient
            break
    others = case.get("other_diagnoses") or []
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


def _tie_key(
    row: CoreRow, matched: int, exact: bool, has_main: bool, cost: int, rules: list[str]
) -> tuple:
    key: list[Any] = []
    for rule in rules:
        if rule == "most_procedures_matched":
            key.append(-matched)
        elif rule == "closest_mean_cost":
            key.append(abs(row.mean_cost_fen - cost))
        elif rule == "highest_score":
            key.append(-row.score)
        elif rule == "main_procedure_first":
            key.append(not has_main)
        elif rule == "exact_match_first":
            key.append(not exact)
    key.append(row.group_code)
    return tuple(key)


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
    unknown = [p for p in procs if p not in index.rank]
    ignore = tuple(policy.grouping.ignore_procedure_prefixes)
    nfg = policy.grouping.not_for_grouping
    level = "亚目" if policy.directory.diagnosis_level == "subcategory" else "类目"
    explain.append(f"主要诊断 {main} → 诊断键 {dx_key}（{level}），决定病种的诊断")
    for p in [case.get("main_procedure"), *(case.get("other_procedures") or [])]:
        if p is None:
            continue
        if ignore and p.startswith(ignore):
            explain.append(f"手术操作 {p}：属政策忽略的操作，不参与分组")
        elif p not in index.rank:
            explain.append(f"手术操作 {p}：不在医保版手术操作代码表中")
        elif _prefix(p, nfg.procedure_prefixes):
            explain.append(f"手术操作 {p}：属不入组规则")
        else:
            explain.append(
                f"手术操作 {p}：参与分组（{'手术/介入' if p in index.surgical else '非手术操作'}）"
            )
    for d in case.get("other_diagnoses") or []:
        explain.append(f"其他诊断 {d}：不决定病种，仅用于辅助目录系数")
    explain.append(f"操作类别（最高强度）：{TYPE_LABEL[proc_type]}")

    def done(
        group_type: str, code: str | None, score: Decimal | None, step: str, reason: str
    ) -> GroupResult:
        if group_type == "special":
            score = index.special_score.get(code)  # type: ignore[arg-type]
        aux = None
        if code is not None:
            aux = _aux(case, policy) if group_type == "core" else Decimal("1.0000")
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
    if unknown:
        reason = REASONS["unknown_procedures"].format(codes="、".join(unknown))
        return done("unmatched", None, None, "unknown_code", reason)
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


def _row_match(row: CoreRow, pset: set[str]) -> tuple[int, Any]:
    """(codes of the row matched, a function telling whether a case code is listed)."""
    if row.match == "prefix":

        def listed(p: str) -> bool:
            return p.startswith(row.procs)

        return sum(1 for r in row.procs if any(p.startswith(r) for p in pset)), listed
    return len(set(row.procs) & pset), row.procs.__contains__


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
    pset = set(procs)
    cost = case["total_cost"]
    main_proc = case.get("main_procedure")
    candidates = []
    for row in rows:
        matched, listed = _row_match(row, pset)
        ok = {
            "none": True,
            "all": matched == len(row.procs),
            "any": matched > 0,
            "prefix": matched > 0,
        }.get(row.match, False)
        if not ok:
            explain.append(f"核心病种 {row.group_code}：手术操作条件不满足")
            continue
        unlisted = [p for p in surgical if not listed(p)]
        if index.policy.grouping.unlisted_surgery_to_comprehensive and unlisted:
            explain.append(
                f"核心病种 {row.group_code}：病例含该组未列出的手术 {'、'.join(unlisted)}，不入此组"
            )
            continue
        if row.match == "prefix":
            exact = matched == len(row.procs) and all(listed(p) for p in procs)
        else:
            exact = matched == len(procs) and len(row.procs) == len(procs)
        has_main = main_proc is not None and listed(main_proc)
        candidates.append(
            (_tie_key(row, matched, exact, has_main, cost, index.policy.grouping.tie_break), row)
        )
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0])
    winner_key, winner = candidates[0]
    rules = [*index.policy.grouping.tie_break, "group_code"]
    for key, row in candidates[1:]:
        decided = next(i for i, (a, b) in enumerate(zip(winner_key, key, strict=True)) if a != b)
        rule = rules[decided]
        explain.append(f"候选病种 {row.group_code} 落选：{RULE_LABEL.get(rule, '按病种编码排序')}")
    explain.append(f"核心病种 {winner.group_code}：入选（分值 {winner.score}）")
    return winner
