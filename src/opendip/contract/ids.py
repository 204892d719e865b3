"""Identifiers: one normaliser for every id that enters OpenDIP.

Every import path (CSV/Excel/Parquet through `opendip.ingest`, web uploads, the
system-to-system API) and every route that takes an id from a user pass ids through this
module, so that two spellings of one id can never become two cases:

1. Unicode NFKC (full-width ``Ｃ１`` → ``C1``, compatibility forms folded);
2. white space stripped at both ends (ASCII, ideographic, no-break);
3. refused when it holds a control or format character anywhere (Unicode categories Cc and
   Cf: NUL, zero-width space/joiner, bidi overrides, BOM, soft hyphen …), or line/paragraph
   separators, private-use or surrogate code points;
4. refused when longer than the field's bound (characters after normalisation);
5. refused unless every character is in the field's allowed set (`ID_FIELDS`).

The scalar form (`normalise_id`) and the vectorised form (`normalise_id_array`, used on
batch paths) apply the same `IdField` and give the same answer (a property test checks it).
Refusals are Chinese and name the field (``结算清单号：含不可见或控制字符``); the importer
quarantines such rows with that reason.

Case identity is ``(hospital_id, case_id)`` after normalisation; see docs/data-contract.md
("Identity") and `opendip.web.region.RegionData.cases_expr` for how uploads resolve to exactly
one row per case.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

#: Unicode categories never allowed in an id (RE2 / Python `unicodedata` names).
FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Co", "Cs", "Zl", "Zp")
_FORBIDDEN_RE2 = "[" + "".join(rf"\p{{{c}}}" for c in FORBIDDEN_CATEGORIES) + "]"


@dataclass(frozen=True)
class IdField:
    """How one id field is spelled: Chinese label, longest length, allowed characters.

    `charset` is the body of a regex character class (ASCII only), e.g. ``0-9A-Za-z_.-``.
    """

    name: str
    label: str
    max_length: int
    charset: str
    charset_text: str

    @property
    def pattern(self) -> str:
        return rf"^[{self.charset}]+$"

    def _python_re(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


#: The id fields of the contract and how each may be spelled. Structural limits of the data
#: contract (like column types), not regional policy.
ID_FIELDS: dict[str, IdField] = {
    f.name: f
    for f in (
        IdField("case_id", "结算清单号", 64, r"0-9A-Za-z_.\-", "字母、数字、下划线、点、连字符"),
        IdField("hospital_id", "定点医疗机构代码", 32, r"0-9A-Za-z_\-", "字母、数字、下划线、连字符"),
        IdField("patient_id", "人员编号", 64, r"0-9A-Za-z_\-", "字母、数字、下划线、连字符"),
    )
}  # fmt: skip


class InvalidIdError(ValueError):
    """An id that cannot be used; `str(exc)` is the Chinese reason naming the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        label = ID_FIELDS[field].label if field in ID_FIELDS else field
        super().__init__(f"{label}：{reason}")


def reason_control() -> str:
    return "含不可见或控制字符（如零宽空格、方向控制符、NUL），请删除后重新提交"


def reason_too_long(spec: IdField) -> str:
    return f"过长（最多 {spec.max_length} 个字符）"


def reason_charset(spec: IdField) -> str:
    return f"含不允许的字符（只允许{spec.charset_text}）"


def normalise_id(value: object, field: str) -> str:
    """The canonical form of one id, or `InvalidIdError` (Chinese, naming the field).

    Empty (after stripping) is refused too: an id is always required where it is used.
    """
    spec = ID_FIELDS[field]
    if value is None:
        raise InvalidIdError(field, "不能为空")
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text:
        raise InvalidIdError(field, "不能为空")
    if any(unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in text):
        raise InvalidIdError(field, reason_control())
    if len(text) > spec.max_length:
        raise InvalidIdError(field, reason_too_long(spec))
    if not spec._python_re().fullmatch(text):
        raise InvalidIdError(field, reason_charset(spec))
    return text


def try_normalise_id(value: object, field: str) -> str | None:
    """`normalise_id`, or None for an id that cannot exist (for look-ups: answer 404)."""
    try:
        return normalise_id(value, field)
    except InvalidIdError:
        return None


@dataclass
class NormalisedIds:
    """Vectorised result: canonical values (null where bad or missing) and one bad mask per
    reason, mutually exclusive (`control`, then `too_long`, then `charset`)."""

    values: pa.Array
    control: pa.Array
    too_long: pa.Array
    charset: pa.Array

    @property
    def bad(self) -> pa.Array:
        return pc.or_(pc.or_(self.control, self.too_long), self.charset)


def normalise_id_array(text: pa.Array | pa.ChunkedArray, field: str) -> NormalisedIds:
    """Batch twin of `normalise_id` (no per-row Python). Nulls and empty text stay null and
    are not bad (whether the column may be missing is the caller's business)."""
    spec = ID_FIELDS[field]
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pa.string())
    norm = pc.utf8_trim_whitespace(pc.utf8_normalize(text, "NFKC"))
    norm = pc.if_else(pc.equal(norm, ""), pa.scalar(None, pa.string()), norm)
    present = pc.is_valid(norm)
    control = pc.fill_null(pc.match_substring_regex(norm, _FORBIDDEN_RE2), False)
    long_ = pc.fill_null(pc.greater(pc.utf8_length(norm), spec.max_length), False)
    long_ = pc.and_(long_, pc.invert(control))
    shape = pc.fill_null(pc.match_substring_regex(norm, spec.pattern), False)
    charset = pc.and_(pc.and_(present, pc.invert(shape)), pc.invert(pc.or_(control, long_)))
    bad = pc.or_(pc.or_(control, long_), charset)
    values = pc.if_else(bad, pa.scalar(None, pa.string()), norm)
    return NormalisedIds(values, control, long_, charset)


def id_reasons(field: str) -> dict[str, str]:
    """Reason per mask name of `NormalisedIds` (for error tables)."""
    spec = ID_FIELDS[field]
    return {
        "control": reason_control(),
        "too_long": reason_too_long(spec),
        "charset": reason_charset(spec),
    }


__all__ = [
    "ID_FIELDS",
    "IdField",
    "InvalidIdError",
    "NormalisedIds",
    "id_reasons",
    "normalise_id",
    "normalise_id_array",
    "try_normalise_id",
]
