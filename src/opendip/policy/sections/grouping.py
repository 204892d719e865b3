"""Grouping (入组) parameters: reference §3, "Grouping a case"."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from opendip.policy.sections.base import Section, Share, explicit, key_error

TieBreak = Literal[
    "most_procedures_matched",
    "closest_mean_cost",
    "highest_score",
    "main_procedure_first",
    "exact_match_first",
]
GroupKind = Literal["special", "basic", "core", "comprehensive", "fallback"]
ProcedureType = Literal["conservative", "diagnostic", "therapeutic", "surgery"]


class NotForGrouping(Section):
    """不入组规则 (DIP 2.0): codes refused with a reason."""

    main_diagnosis_prefixes: list[str] = []
    procedure_prefixes: list[str] = []


class Fallback(Section):
    """What happens to a case no group takes."""

    mode: Literal["blank_group", "unmatched"] = "unmatched"
    group_code: str = "UNGROUPED"
    name: str = "空白病组"

    @model_validator(mode="before")
    @classmethod
    def _fraction_moved(cls, data: Any) -> Any:
        # One key for one number: what a blank group pays is money, so it lives in scoring.
        if isinstance(data, dict) and "fraction" in data:
            raise ValueError(
                "fraction 已移至 scoring.fallback_fraction（空白病组按费用与全部病例次均费用之比的"
                "该比例付费），请删除 grouping.fallback.fraction"
            )
        return data

    @model_validator(mode="after")
    def _blank_group_keys(self) -> Fallback:
        if self.mode == "unmatched":
            for key in ("group_code", "name"):
                if explicit(self, key):
                    raise key_error(
                        key,
                        f"{key} 只用于 mode = blank_group（空白病组），mode = unmatched 时不入组病例"
                        "不进任何病组，请删除",
                        f"{key} only applies to mode blank_group; remove it",
                    )
        return self


class GroupingPolicy(Section):
    #: Which group kind is tried first.
    kind_precedence: list[GroupKind] = ["special", "core", "comprehensive", "fallback"]
    tie_break: list[TieBreak] = ["most_procedures_matched", "closest_mean_cost", "highest_score"]
    #: A case whose procedures match no core row and include a surgery goes to the
    #: comprehensive surgery group (true) or to the conservative row of its diagnosis (false).
    #: It never removes a matching row: extra procedures do not break a row's match.
    unlisted_surgery_to_comprehensive: bool = True
    #: Procedure types (after `interventional_as`) that count for grouping: they form the
    #: case's key and its procedure type. A case without a counted procedure is conservative
    #: (保守); procedures of other types are left out like ignored prefixes.
    counted_procedure_types: list[Literal["diagnostic", "therapeutic", "surgery"]] = [
        "diagnostic",
        "therapeutic",
        "surgery",
    ]
    #: Procedure codes ignored when forming the key (e.g. routine minor operations).
    ignore_procedure_prefixes: list[str] = []
    #: Whether the TCM/ethnic-medicine treatments the policy lists (the treatment codes of
    #: `scoring.tcm_advantage.groups`) count as procedures for grouping. false (default): they
    #: are left out of the key like ignored prefixes, so a conservative stay treated with
    #: 小夹板 or 针刺 stays in its conservative group (the TCM rule then adjusts its score);
    #: true: they count like any procedure of their type.
    tcm_treatments_counted: bool = False
    not_for_grouping: NotForGrouping = NotForGrouping()
    #: Intensity order of procedure types, least to most intensive.
    procedure_type_order: list[ProcedureType] = [
        "conservative",
        "diagnostic",
        "therapeutic",
        "surgery",
    ]
    #: Interventional procedures (介入治疗) count as this type when the case's procedure type
    #: is decided (surgery by default, as most regions do; some price them as therapeutic).
    interventional_as: ProcedureType = "surgery"
    fallback: Fallback = Fallback()

    @model_validator(mode="after")
    def _counted_unique(self) -> GroupingPolicy:
        if len(set(self.counted_procedure_types)) != len(self.counted_procedure_types):
            raise ValueError("counted_procedure_types 有重复的操作类别")
        return self

    #: Target 入组率 reported against (not enforced).
    target_grouping_rate: Share = Field(default=Decimal("0.9"))
