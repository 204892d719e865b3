"""Scoring parameters of one policy version, as exact integers shared by batch and single."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from opendip.contract.tables import HOSPITAL_LEVELS
from opendip.money import yuan_to_fen
from opendip.policy import Policy
from opendip.scoring.errors import MissingParameterError, ScoringError
from opendip.scoring.exact import ratio, scaled
from opendip.scoring.special import SpecialRules, special_rules

#: Scale of coefficients in the contract (decimal(10, 4)) and of base scores (decimal(18, 4)).
COEF_DECIMALS = 4
SCORE_SCALE = 4


@dataclass(frozen=True)
class Band:
    """Deviation thresholds for base scores in [score_min, score_max)."""

    index: int
    score_min: Decimal | None
    score_max: Decimal | None
    high: tuple[int, int]
    low: tuple[int, int]
    high_text: str
    low_text: str
    high_inclusive: bool = False
    low_inclusive: bool = False

    def contains(self, score: Decimal) -> bool:
        lo = self.score_min is None or score >= self.score_min
        hi = self.score_max is None or score < self.score_max
        return lo and hi


@dataclass(frozen=True)
class ScoringParams:
    """Everything scoring needs from one policy version, checked, as integer ratios."""

    score_decimals: int
    reference_mean: str
    #: pool → fen per point (score_times_factor), as a ratio.
    fen_per_point: dict[str, tuple[int, int]]
    bands: tuple[Band, ...]
    high_formula: str
    excess_share: tuple[int, int]
    low_formula: str
    extreme: tuple[int, int] | None
    extreme_action: str
    extreme_text: str
    extreme_inclusive: bool
    fallback_fraction: tuple[int, int]
    fallback_text: str
    base_score: tuple[int, int]
    all_case_mean_fen: int | None
    #: level → coefficient × 10**4
    level_coef4: dict[str, int]
    #: (name, hospital ids, coefficient × 10**4)
    bonuses: tuple[tuple[str, frozenset[str], int], ...]
    apply_to_basic: bool
    level_mean_missing: str
    reviewed_score_is: str
    low_applies_coefficient: bool
    ratio_decimals: int | None
    round_case_first: bool
    #: 中医优势病种 and 新技术新项目 (opendip.scoring.special)
    special: SpecialRules

    @property
    def unit(self) -> int:
        """10**score_decimals: score units per point."""
        return 10**self.score_decimals


def _text(value: Decimal) -> str:
    """A policy number as users wrote it (2, 1.5, 0.7)."""
    out = format(Decimal(value).normalize(), "f")
    return out


def _coef4(value: Decimal, parameter: str) -> int:
    try:
        return scaled(value, COEF_DECIMALS)
    except ValueError as exc:
        raise ScoringError(
            f"政策参数 {parameter} = {value} 超过 {COEF_DECIMALS} 位小数（医疗机构系数精度）"
        ) from exc


#: Converted parameters of recently used policy objects (policies are frozen models, so a
#: policy object's parameters never change): the single-case path converts them once per
#: policy version instead of on every case (the pre-grouping API, issue 16 §4).
_MEMO: dict[tuple[int, int | None], tuple[Policy, ScoringParams]] = {}
_MEMO_SIZE = 64


def scoring_params(policy: Policy, all_case_mean_fen: int | None = None) -> ScoringParams:
    """Check and convert `policy.scoring` (raises ScoringError / MissingParameterError);
    remembered per policy object and all-case mean."""
    key = (id(policy), all_case_mean_fen)
    found = _MEMO.get(key)
    if found is not None and found[0] is policy:
        return found[1]
    params = _convert(policy, all_case_mean_fen)
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.clear()
    _MEMO[key] = (policy, params)
    return params


def _convert(policy: Policy, all_case_mean_fen: int | None) -> ScoringParams:
    s = policy.scoring
    if s.score_decimals > SCORE_SCALE:
        raise ScoringError(
            f"政策参数 scoring.score_decimals = {s.score_decimals} 超过分值列精度 "
            f"{SCORE_SCALE} 位小数（SCORED 契约 decimal(18, 4)）"
        )
    bands = []
    for i, b in enumerate(s.deviation_bands):
        bands.append(
            Band(
                i,
                b.score_min,
                b.score_max,
                ratio(b.high_multiple),
                ratio(b.low_multiple),
                _text(b.high_multiple),
                _text(b.low_multiple),
                b.high_inclusive,
                b.low_inclusive,
            )
        )
    level_coef4 = {
        lv: _coef4(c, f"scoring.hospital_coefficient.levels.{lv}")
        for lv, c in s.hospital_coefficient.levels.items()
    }
    bonuses = tuple(
        (
            b.name,
            frozenset(b.hospital_ids),
            _coef4(b.coefficient, f"scoring.hospital_coefficient.bonuses[{i}].coefficient"),
        )
        for i, b in enumerate(s.hospital_coefficient.bonuses)
    )
    fen_per_point = {pool: ratio(Decimal(v) * 100) for pool, v in s.yuan_per_point.items()}
    if all_case_mean_fen is None and s.all_case_mean_yuan is not None:
        all_case_mean_fen = yuan_to_fen(s.all_case_mean_yuan)
    return ScoringParams(
        score_decimals=s.score_decimals,
        reference_mean=s.reference_mean,
        fen_per_point=fen_per_point,
        bands=tuple(bands),
        high_formula=s.high_formula,
        excess_share=ratio(s.high_excess_share),
        low_formula=s.low_formula,
        extreme=ratio(s.extreme.multiple) if s.extreme else None,
        extreme_action=s.extreme.action if s.extreme else "",
        extreme_text=_text(s.extreme.multiple) if s.extreme else "",
        extreme_inclusive=bool(s.extreme and s.extreme.inclusive),
        fallback_fraction=ratio(s.fallback_fraction),
        fallback_text=_text(s.fallback_fraction),
        base_score=ratio(policy.directory.base_score),
        all_case_mean_fen=all_case_mean_fen,
        level_coef4=level_coef4,
        bonuses=bonuses,
        apply_to_basic=s.hospital_coefficient.apply_to_basic_groups,
        level_mean_missing=s.level_mean_missing,
        reviewed_score_is=s.reviewed_score_is,
        low_applies_coefficient=s.low_applies_hospital_coefficient,
        ratio_decimals=s.ratio_decimals,
        round_case_first=s.round_case_score_before_coefficient,
        special=special_rules(policy),
    )


def require_level(params: ScoringParams, level: str) -> int:
    """The level coefficient × 10**4, or MissingParameterError naming it."""
    if level not in params.level_coef4:
        raise MissingParameterError(
            f"scoring.hospital_coefficient.levels.{level}",
            f"有 {level} 级医院的病例，但政策未给出该等级的基本等级系数",
        )
    return params.level_coef4[level]


def require_fallback_mean(params: ScoringParams) -> int:
    if params.all_case_mean_fen is None or params.all_case_mean_fen <= 0:
        raise MissingParameterError(
            "scoring.all_case_mean_yuan",
            "有归入空白（保底）病组的病例，其分值 = 比例 × 费用 ÷ 全部病例次均费用 × 基准分值，"
            "需要全部病例次均费用",
        )
    return params.all_case_mean_fen


def require_fen_per_point(params: ScoringParams, pool: str) -> tuple[int, int]:
    if pool not in params.fen_per_point:
        raise MissingParameterError(
            f"scoring.yuan_per_point.{pool}",
            "reference_mean = score_times_factor 时参照均值 = 分值 × 每分元数，该统筹区未给出",
        )
    return params.fen_per_point[pool]


__all__ = ["HOSPITAL_LEVELS", "Band", "ScoringParams", "scoring_params"]
