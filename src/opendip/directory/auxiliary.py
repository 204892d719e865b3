"""Auxiliary directories (辅助目录) as data: comorbidity (CCI-style weights with exclusions
by main diagnosis), disease severity (discharge method, ICU, ventilation), tumour treatment
(metastasis, radiotherapy, chemotherapy) and age bands, loaded from a YAML file and applied to
core groups by the grouper (`group_cases(..., auxiliary=...)` and the single-case index).

Within a family the highest matching coefficient applies; the case's coefficient is the
product over the families, rounded half up to 4 decimals. `explain` lists every code's impact
(a comorbidity's weight, an excluded one and why, the severity / tumour / age row that
matched); the batch expression and the single-case function give the same coefficient.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache, reduce
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

COEFFICIENT = "decimal(9, 4)"
DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "directory" / "auxiliary-demo.yaml"


class AuxiliaryError(ValueError):
    """An auxiliary directory file that cannot be used (Chinese, naming the entry)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Model):
    """One comorbidity condition: diagnosis prefixes, CCI-style weight, and the main
    diagnoses (prefixes) with which it does not count (the same disease)."""

    name: str
    prefixes: list[str] = Field(min_length=1)
    weight: int = Field(ge=1)
    exclude_with_main: list[str] = []


class Level(_Model):
    label: str
    min_score: int = Field(ge=1)
    coefficient: Decimal = Field(gt=0)


class Comorbidity(_Model):
    conditions: list[Condition] = []
    levels: list[Level] = []


class Row(_Model):
    """A severity / tumour / age row: it matches when every condition given holds."""

    label: str
    coefficient: Decimal = Field(gt=0)
    discharge_methods: list[str] = []
    min_icu_days: int | None = Field(default=None, ge=1)
    diagnosis_prefixes: list[str] = []  # main or other diagnosis
    procedure_prefixes: list[str] = []
    min_age_years: int | None = None
    max_age_years: int | None = None
    max_age_days: int | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> Row:
        given = (
            self.discharge_methods, self.min_icu_days, self.diagnosis_prefixes,
            self.procedure_prefixes, self.min_age_years, self.max_age_years, self.max_age_days,
        )  # fmt: skip
        if not any(g not in (None, []) for g in given):
            raise ValueError(f"“{self.label}”没有任何匹配条件")
        return self


class AuxiliaryDirectory(_Model):
    version: str
    name: str
    comorbidity: Comorbidity = Comorbidity()
    severity: list[Row] = []
    tumour: list[Row] = []
    age_bands: list[Row] = []

    # --- single case -------------------------------------------------------------------

    def apply(
        self, case: dict[str, Any], known: dict[str, bool] | None = None
    ) -> tuple[Decimal, list[str]]:
        """(coefficient, explanation lines) for one case; other diagnoses missing from the
        code table (`known`) are ignored, as in the batch path."""
        lines: list[str] = []
        main = case.get("main_diagnosis") or ""
        others = [d for d in case.get("other_diagnoses") or [] if known is None or d in known]
        coef = Decimal(1)
        score = 0
        for c in self.comorbidity.conditions:
            hits = [d for d in others if d.startswith(tuple(c.prefixes))]
            if not hits:
                continue
            if c.exclude_with_main and main.startswith(tuple(c.exclude_with_main)):
                lines.append(f"合并症 {'、'.join(hits)}（{c.name}）：与主要诊断 {main} 同类，不计")
                continue
            score += c.weight
            lines.append(f"合并症 {'、'.join(hits)}（{c.name}）：+{c.weight} 分")
        level = self._level(score)
        if level is not None:
            coef *= level.coefficient
            lines.append(f"合并症评分 {score} → {level.label} ×{level.coefficient}")
        elif score:
            lines.append(f"合并症评分 {score}：未达到最低等级，系数 1")
        procs = [
            p for p in [case.get("main_procedure"), *(case.get("other_procedures") or [])] if p
        ]
        for family, rows in (("疾病严重程度", self.severity), ("肿瘤", self.tumour),
                             ("年龄", self.age_bands)):  # fmt: skip
            best = max(
                (r for r in rows if _matches(r, case, main, others, procs)),
                key=lambda r: r.coefficient,
                default=None,
            )
            if best is not None:
                coef *= best.coefficient
                lines.append(f"{family}：{best.label} ×{best.coefficient}")
        coef = coef.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        return coef, lines

    def _level(self, score: int) -> Level | None:
        reached = [lv for lv in self.comorbidity.levels if score >= lv.min_score]
        return max(reached, key=lambda lv: lv.min_score) if reached else None

    # --- batch -------------------------------------------------------------------------

    def other_diagnosis_prefixes(self) -> list[str]:
        """Every prefix `coefficient_expr` matches other diagnoses against (it reads them
        only through these)."""
        rows = [*self.severity, *self.tumour, *self.age_bands]
        return [
            *[p for c in self.comorbidity.conditions for p in c.prefixes],
            *[p for r in rows for p in r.diagnosis_prefixes],
        ]

    def coefficient_expr(self, t: ir.Table) -> ir.NumericValue:
        """The coefficient of every row of `t` (main_diagnosis, other_diagnoses, age,
        age_days, discharge_method, icu_days, main_procedure, other_procedures)."""
        one = ibis.literal(Decimal(1), type=COEFFICIENT)
        score: ir.IntegerValue = ibis.literal(0)
        for c in self.comorbidity.conditions:
            present = (
                t.other_diagnoses.filter(lambda d, c=c: _any_prefix(d, c.prefixes)).length() > 0
            )
            if c.exclude_with_main:
                present = present & ~_any_prefix(t.main_diagnosis, c.exclude_with_main).fill_null(
                    False
                )
            score = score + ibis.ifelse(present, c.weight, 0)
        coef = one
        levels = sorted(self.comorbidity.levels, key=lambda lv: lv.min_score, reverse=True)
        if levels:
            coef = coef * ibis.cases(
                *[(score >= lv.min_score, ibis.literal(lv.coefficient, type=COEFFICIENT))
                  for lv in levels],
                else_=one,
            )  # fmt: skip
        procs = (
            ibis.array([t.main_procedure])
            .filter(lambda p: p.notnull())
            .concat(t.other_procedures.fill_null(ibis.literal([], type="array<string>")))
        )
        for rows in (self.severity, self.tumour, self.age_bands):
            ordered = sorted(rows, key=lambda r: r.coefficient, reverse=True)
            if ordered:
                coef = coef * ibis.cases(
                    *[(_row_expr(r, t, procs), ibis.literal(r.coefficient, type=COEFFICIENT))
                      for r in ordered],
                    else_=one,
                )  # fmt: skip
        return coef.round(4).cast(COEFFICIENT)


def _any_prefix(col: ir.StringValue, prefixes: list[str]) -> ir.BooleanValue:
    return reduce(lambda a, b: a | b, [col.startswith(p) for p in prefixes])


def _matches(r: Row, case: dict[str, Any], main: str, others: list[str], procs: list[str]) -> bool:
    if r.discharge_methods and case.get("discharge_method") not in r.discharge_methods:
        return False
    if r.min_icu_days is not None and (case.get("icu_days") or 0) < r.min_icu_days:
        return False
    if r.diagnosis_prefixes and not any(
        d.startswith(tuple(r.diagnosis_prefixes)) for d in [main, *others] if d
    ):
        return False
    if r.procedure_prefixes and not any(p.startswith(tuple(r.procedure_prefixes)) for p in procs):
        return False
    age, days = case.get("age"), case.get("age_days")
    if r.min_age_years is not None and (age is None or age < r.min_age_years):
        return False
    if r.max_age_years is not None and (age is None or age > r.max_age_years):
        return False
    if r.max_age_days is not None:
        in_days = days if days is not None else (age * 365 if age is not None else None)
        if in_days is None or in_days > r.max_age_days:
            return False
    return True


def _row_expr(r: Row, t: ir.Table, procs: ir.ArrayValue) -> ir.BooleanValue:
    cond: ir.BooleanValue = ibis.literal(True)
    if r.discharge_methods:
        cond &= t.discharge_method.isin(r.discharge_methods).fill_null(False)
    if r.min_icu_days is not None:
        cond &= t.icu_days.fill_null(0) >= r.min_icu_days
    if r.diagnosis_prefixes:
        main = _any_prefix(t.main_diagnosis, r.diagnosis_prefixes).fill_null(False)
        other = (
            t.other_diagnoses.filter(lambda d: _any_prefix(d, r.diagnosis_prefixes)).length() > 0
        )
        cond &= main | other
    if r.procedure_prefixes:
        cond &= procs.filter(lambda p: _any_prefix(p, r.procedure_prefixes)).length() > 0
    if r.min_age_years is not None:
        cond &= (t.age >= r.min_age_years).fill_null(False)
    if r.max_age_years is not None:
        cond &= (t.age <= r.max_age_years).fill_null(False)
    if r.max_age_days is not None:
        in_days = ibis.coalesce(t.age_days.cast("int64"), t.age.cast("int64") * 365)
        cond &= (in_days <= r.max_age_days).fill_null(False)
    return cond


def load_auxiliary(path: str | Path | None = None) -> AuxiliaryDirectory:
    """An auxiliary directory file (default: the shipped demo file)."""
    path = Path(path) if path else DEMO_FILE
    try:
        return AuxiliaryDirectory.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise AuxiliaryError(f"{path}：无法读取（{exc}）") from exc
    except ValidationError as exc:
        problems = [f"{'.'.join(str(x) for x in e['loc'])}：{e['msg']}" for e in exc.errors()]
        raise AuxiliaryError(f"{path}：" + "；".join(problems)) from exc


@lru_cache(maxsize=8)
def _cached(path: str) -> AuxiliaryDirectory:
    return load_auxiliary(None if path == "demo" else path)


def auxiliary_for_policy(policy: Any) -> AuxiliaryDirectory | None:
    """The auxiliary directory the policy names (`directory.auxiliary.file`), or None."""
    name = policy.directory.auxiliary.file
    return _cached(name) if name else None


#: Case columns the auxiliary directory reads beyond the grouper's own.
EXTRA_COLUMNS = ("age_days", "discharge_method", "icu_days")
