"""The 特例单议 share cap (policy `scoring.special_review_max_share`): a hospital may nominate
at most that share of its discharged cases of a year for special review (DIP 2.0: in
principle no more than 5%). One rule for the submission check (web applications) and the
clearing check (`opendip.settlement.review_cap`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

#: The policy key (users see the rule in Chinese; docs/policy.md names the key).
KEY = "scoring.special_review_max_share"


def max_nominations(share: Decimal, discharged: int) -> int:
    """The largest count with count ≤ share × discharged (whole cases, rounded down)."""
    return int((Decimal(share) * discharged).to_integral_value(rounding=ROUND_FLOOR))


def share_text(share: Decimal) -> str:
    return f"{(Decimal(share) * 100).normalize():f}%"


@dataclass(frozen=True)
class CapExcess:
    """A hospital over the cap in a year: `count` cases against `allowed`."""

    hospital_id: str
    year: int
    discharged: int
    count: int
    allowed: int


class ReviewCapExceeded(ValueError):
    """Nominations beyond the hospital's share of its discharged cases."""


def check_submission(
    hospital_id: str,
    year: int,
    discharged: int,
    already: int,
    new: int,
    share: Decimal,
) -> None:
    """Raise ReviewCapExceeded when `already` + `new` nominated cases of `year` exceed the
    hospital's cap; the message gives every number."""
    allowed = max_nominations(share, discharged)
    if already + new > allowed:
        raise ReviewCapExceeded(
            f"特例单议申报超出上限：医院 {hospital_id} {year} 年出院 {discharged:,} 例，"
            f"按医保政策特例单议上限（出院病例的 {share_text(share)}）最多可申报 {allowed:,} 例；"
            f"已申报 {already:,} 例，本次 {new:,} 例，合计 {already + new:,} 例，"
            f"超出 {already + new - allowed:,} 例"
        )


def excess_text(excess: list[CapExcess], share: Decimal) -> str:
    """The clearing's refusal: every hospital over the cap with its numbers."""
    lines = [
        f"医院 {e.hospital_id} {e.year} 年出院 {e.discharged:,} 例，最多 {e.allowed:,} 例，"
        f"特例单议通过 {e.count:,} 例"
        for e in excess
    ]
    return (
        f"特例单议通过病例超出上限（出院病例的 {share_text(share)}）："
        + "；".join(lines)
        + "。经办机构确认后可明确放行（记入审计日志），否则不予清算"
    )
