"""Vectorised parsing of text columns into contract types, with a bad-value mask each.

Every parser takes trimmed text (empty → null, see `clean_text`) and returns
``(typed array, bad mask)``: *bad* means a value was given but cannot be used. Missing values
are null and not bad; whether a column may be missing is decided by the caller.

The common, well-formed case takes a fast path (one regex check and one Arrow cast); only a
column that has unusual values pays for the general path. No per-row Python anywhere.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Separators of list columns (after NFKC, so full-width ｜；，are included).
LIST_SEPARATORS = r"[|;,、\s]+"

#: ICD-10 insurance-edition shape: category `K35`, subcategory `K35.8`, extensions
#: `K35.800`, `K35.800x001`, `I10.x00`; optional dagger/asterisk mark; morphology `M8140/3`.
DIAGNOSIS_SHAPE = (
    r"^(?:[A-Z][0-9]{2}(?:\.[0-9x][0-9x]{0,3}(?:x[0-9]{3})?)?[*†+]?|M[0-9]{4,5}/[0-9])$"
)
#: ICD-9-CM-3 insurance-edition shape: `47.0`, `47.01`, `47.0100`, `47.0100x001`.
PROCEDURE_SHAPE = r"^[0-9]{2}(?:\.[0-9x]{1,4}(?:x[0-9]{3})?)?$"

#: Text forms accepted for coded columns → canonical value (compared lower-case).
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "insurance_type": {
        "employee": "employee", "职工": "employee", "310": "employee", "城镇职工": "employee",
        "职工医保": "employee", "职工基本医疗保险": "employee",
        "城镇职工基本医疗保险": "employee",
        "resident": "resident", "居民": "resident", "390": "resident", "城乡居民": "resident",
        "居民医保": "resident", "城乡居民基本医疗保险": "resident",
    },
    "sex": {
        "1": "1", "男": "1", "男性": "1", "m": "1", "male": "1",
        "2": "2", "女": "2", "女性": "2", "f": "2", "female": "2",
        "0": "0", "未知": "0", "未知的性别": "0", "9": "9", "未说明": "9", "未说明的性别": "9",
    },
    "admission_route": {
        "1": "1", "01": "1", "急诊": "1", "2": "2", "02": "2", "门诊": "2",
        "3": "3", "03": "3", "其他医疗机构转入": "3", "转入": "3",
        "9": "9", "09": "9", "其他": "9",
    },
    "discharge_method": {
        "1": "1", "01": "1", "医嘱离院": "1", "2": "2", "02": "2", "医嘱转院": "2",
        "3": "3", "03": "3", "医嘱转社区卫生服务机构/乡镇卫生院": "3", "医嘱转社区": "3",
        "4": "4", "04": "4", "非医嘱离院": "4", "5": "5", "05": "5", "死亡": "5",
        "9": "9", "09": "9", "其他": "9",
    },
    "level": {
        "tertiary": "tertiary", "三级": "tertiary", "三甲": "tertiary", "三乙": "tertiary",
        "三级甲等": "tertiary", "三级乙等": "tertiary", "三级丙等": "tertiary",
        "secondary": "secondary", "二级": "secondary", "二甲": "secondary", "二乙": "secondary",
        "二级甲等": "secondary", "二级乙等": "secondary", "二级丙等": "secondary",
        "primary": "primary", "一级": "primary", "一级甲等": "primary", "一级乙等": "primary",
        "一级丙等": "primary",
        "unrated": "unrated", "未定级": "unrated", "未评级": "unrated",
    },
    # settlement-list child records (opendip.contract.settlement)
    "main_flag": {
        "1": "1", "0": "0", "2": "0", "m": "1", "o": "0", "是": "1", "否": "0", "y": "1",
        "n": "0", "主要": "1", "其他": "0", "主": "1",
    },
    "diagnosis_kind": {
        "wm": "wm", "西医": "wm", "西医诊断": "wm", "西医主要诊断": "wm", "西医其他诊断": "wm",
        "tcm_disease": "tcm_disease", "中医主病": "tcm_disease", "中医主病诊断": "tcm_disease",
        "主病": "tcm_disease", "tcm_syndrome": "tcm_syndrome", "中医主证": "tcm_syndrome",
        "中医主证诊断": "tcm_syndrome", "主证": "tcm_syndrome",
    },
    "anaesthesia_method": {
        "01": "1", "全身麻醉": "1", "全麻": "1", "吸入麻醉": "11", "静脉麻醉": "12",
        "基础麻醉": "13", "02": "2", "椎管内麻醉": "2", "蛛网膜下腔阻滞": "21",
        "腰麻": "21", "硬脊膜外腔阻滞": "22", "硬膜外麻醉": "22", "03": "3", "局部麻醉": "3",
        "局麻": "3", "神经丛阻滞": "31", "神经节阻滞": "32", "神经阻滞": "33",
        "区域阻滞": "34", "局部浸润麻醉": "35", "局部浸润": "35", "表面麻醉": "36",
        "04": "4", "复合麻醉": "4", "静吸复合麻醉": "41", "静吸复合": "41", "针药复合": "42",
        "09": "9", "其他": "9",
    },
    "fee_category": {
        "1": "01", "床位费": "01", "2": "02", "诊察费": "02", "诊查费": "02", "3": "03",
        "检查费": "03", "4": "04", "化验费": "04", "5": "05", "治疗费": "05", "6": "06",
        "手术费": "06", "7": "07", "护理费": "07", "8": "08", "卫生材料费": "08",
        "9": "09", "西药费": "09", "中药饮片费": "10", "中成药费": "11",
        "一般诊疗费": "12", "挂号费": "13", "其他费": "14", "其他费用": "14",
    },
    "ownership": {
        "public": "public", "公立": "public", "private": "private", "民营": "private",
        "私立": "private", "非公立": "private",
    },
}  # fmt: skip


def allowed_text(name: str, allowed: tuple[str, ...]) -> str:
    """The allowed values of a coded column as users know them: '职工（employee）、居民（resident）',
    '1 医嘱离院、2 医嘱转院、…'."""
    aliases = VALUE_ALIASES.get(name, {})
    shown = []
    for value in allowed:
        label = next((a for a, v in aliases.items() if v == value and not a.isascii()), None)
        if label is None:
            shown.append(value)
        elif value.isdigit():
            shown.append(f"{value} {label}")
        else:
            shown.append(f"{label}（{value}）")
    return "、".join(shown)


def clean_text(arr: pa.Array) -> pa.Array:
    """Trim white space (ASCII, ideographic, no-break); empty text → null."""
    text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _present(arr: pa.Array) -> pa.Array:
    return pc.is_valid(arr)


def _bad(present: pa.Array, parsed: pa.Array) -> pa.Array:
    return pc.and_(present, pc.is_null(parsed))


def _fill(text: pa.Array, value: str) -> pa.Array:
    return pc.fill_null(text, value)


def _try_cast(text: pa.Array, type_: pa.DataType) -> pa.Array | None:
    """Arrow's own cast when every value is already in its canonical form, else None."""
    try:
        return pc.cast(text, type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _no_bad(n: int) -> pa.Array:
    return pa.array(np.zeros(n, dtype=bool))


def _ascii(text: pa.Array) -> bool:
    return bool(pc.all(pc.fill_null(pc.string_is_ascii(text), True)).as_py())


# --- codes -------------------------------------------------------------------------------


def normalise_codes(text: pa.Array, nfkc: bool = True) -> pa.Array:
    """Batch twin of `opendip.codes.normalise_code`: full-width → half-width (NFKC, and the
    ideographic full stop → '.'), white space dropped, upper-case, the national 'x' after the
    first character kept lower-case (`ｋ３５．８００Ｘ００１` → `K35.800x001`)."""
    if nfkc and not _ascii(text):
        text = pc.utf8_normalize(text, "NFKC")
    text = pc.replace_substring(text, "。", ".")
    upper = pc.utf8_upper(pc.replace_substring_regex(text, r"\s+", ""))
    head = pc.utf8_slice_codeunits(upper, 0, 1)
    tail = pc.replace_substring(pc.utf8_slice_codeunits(upper, 1), "X", "x")
    joined = pc.binary_join_element_wise(head, tail, "")
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def parse_code(text: pa.Array, shape: str) -> tuple[pa.Array, pa.Array]:
    """One code per cell: normalised, null if its shape is wrong (then bad)."""
    codes = normalise_codes(text)
    ok = pc.fill_null(pc.match_substring_regex(codes, shape), False)
    out = pc.if_else(ok, codes, pa.scalar(None, pa.string()))
    return out, _bad(_present(text), out)


def split_list(text: pa.Array) -> pa.ListArray:
    """'A|B；C，D' → ['A', 'B', 'C', 'D'] (blank elements dropped, missing → [])."""
    normal = _fill(text, "")
    if not _ascii(normal):
        normal = pc.utf8_normalize(normal, "NFKC")
    joined = pc.utf8_trim(pc.replace_substring_regex(normal, LIST_SEPARATORS, "|"), "|")
    return pc.split_pattern(joined, "|")


def parse_code_list(text: pa.Array, shape: str) -> tuple[pa.Array, pa.Array]:
    """A list column of codes; a row is bad if any of its elements is malformed."""
    lists = split_list(text)
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    codes = normalise_codes(flat, nfkc=False)
    present = pc.is_valid(codes)
    ok = pc.fill_null(pc.match_substring_regex(codes, shape), False)
    bad_parents = pc.filter(parents, pc.and_(present, pc.invert(ok))).to_numpy()
    keep = pc.and_(present, ok)
    sizes = np.bincount(pc.filter(parents, keep).to_numpy(), minlength=len(text))
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    out = pa.ListArray.from_arrays(offsets, pc.filter(codes, keep))
    bad = np.zeros(len(text), dtype=bool)
    bad[bad_parents] = True
    return out, pa.array(bad)


# --- dates -------------------------------------------------------------------------------

_TIME_PART = r"(?:[ T]+|\s*)\d{1,2}[:：时]\d{1,2}(?:[:：分]\d{1,2}(?:\.\d+)?秒?)?$"


def _to_iso_date_text(text: pa.Array) -> pa.Array:
    """Date texts in the accepted forms → 'YYYY-MM-DD' text (null if not a date form)."""
    t = _fill(text, "")
    t = pc.replace_substring_regex(t, r"^(\d{4})(\d{2})(\d{2})(?:\d{4}(?:\d{2})?)?$", r"\1-\2-\3")
    t = pc.replace_substring_regex(t, r"^(\d{4})年(\d{1,2})月(\d{1,2})日?", r"\1-\2-\3")
    t = pc.replace_substring_regex(t, _TIME_PART, "")
    parts = pc.extract_regex(t, r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$")
    y, m, d = (pc.struct_field(parts, k) for k in ("y", "m", "d"))
    return pc.binary_join_element_wise(y, pc.utf8_lpad(m, 2, "0"), pc.utf8_lpad(d, 2, "0"), "-")


def _iso_to_date(iso: pa.Array) -> pa.Array:
    """'YYYY-MM-DD' → date32; impossible dates (2026-02-30) → null."""
    try:
        return pc.cast(iso, pa.date32())
    except pa.ArrowInvalid:
        pass
    parsed = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime is lenient on some platforms: keep only dates that round-trip.
    exact = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), iso), False)
    return pc.if_else(exact, pc.cast(parsed, pa.date32()), pa.scalar(None, pa.date32()))


def parse_date(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """`2026-01-05`, `2026/1/5`, `2026.1.5`, `20260105`, `2026年1月5日`, each optionally with
    a time (`10:30`, `10:30:00`, or `20260105103000`); the time is dropped."""
    dates = _try_cast(text, pa.date32())
    if dates is None:
        dates = _iso_to_date(_to_iso_date_text(text))
    dates = pc.if_else(_present(text), dates, pa.scalar(None, pa.date32()))
    return dates, _bad(_present(text), dates)


_DATETIME = (
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[ T]+(?P<H>\d{1,2})[:：时](?P<M>\d{1,2})(?:[:：分](?P<S>\d{1,2})?(?:\.\d+)?秒?)?)?$"
)


def parse_datetime(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Date-times (timestamp[s]): `2026-01-05 10:30:00`, `2026-01-05T10:30`, `2026/1/5 10:30`,
    `20260105103000`, `2026年1月5日 10时30分`; a date alone is midnight."""
    t = _fill(text, "")
    t = pc.replace_substring_regex(
        t, r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?$", r"\1-\2-\3 \4:\5:\6"
    )
    t = pc.replace_substring_regex(t, r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3")
    t = pc.replace_substring_regex(t, r"^(\d{4})年(\d{1,2})月(\d{1,2})日?", r"\1-\2-\3")
    t = pc.replace_substring_regex(t, r":$", "")
    parts = pc.extract_regex(t, _DATETIME)

    def part(name: str, width: int, default: str = "00") -> pa.Array:
        value = pc.struct_field(parts, name)
        value = pc.if_else(pc.equal(pc.fill_null(value, ""), ""), default, value)
        return pc.utf8_lpad(value, width, "0")

    iso = pc.binary_join_element_wise(
        pc.binary_join_element_wise(part("y", 4), part("m", 2), part("d", 2), "-"),
        pc.binary_join_element_wise(part("H", 2), part("M", 2), part("S", 2), ":"),
        " ",
    )
    iso = pc.if_else(pc.is_valid(pc.struct_field(parts, "y")), iso, pa.scalar(None, pa.string()))
    parsed = pc.strptime(iso, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    exact = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d %H:%M:%S"), iso), False)
    out = pc.if_else(pc.and_(exact, _present(text)), parsed, pa.scalar(None, pa.timestamp("s")))
    return out, _bad(_present(text), out)


def parse_month(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """`2026-05`, `202605`, `2026/5`, `2026年5月` → '2026-05'; a full date gives its month."""
    parts = pc.extract_regex(
        _fill(text, ""), r"^(?P<y>\d{4})(?:[-/.年](?P<m1>\d{1,2})月?|(?P<m2>\d{2}))$"
    )
    y = pc.struct_field(parts, "y")
    m = pc.if_else(
        pc.equal(pc.fill_null(pc.struct_field(parts, "m1"), ""), ""),
        pc.struct_field(parts, "m2"),
        pc.struct_field(parts, "m1"),
    )
    mm = pc.cast(pc.fill_null(pc.if_else(pc.equal(m, ""), "0", m), "0"), pa.int32())
    ok = pc.fill_null(pc.and_(pc.greater_equal(mm, 1), pc.less_equal(mm, 12)), False)
    month = pc.binary_join_element_wise(y, pc.utf8_lpad(m, 2, "0"), "-")
    out = pc.if_else(pc.and_(_present(text), ok), month, pa.scalar(None, pa.string()))
    missing = pc.and_(_present(text), pc.is_null(out))
    if pc.any(missing).as_py():  # a full date in the month column: take its month
        dates, _ = parse_date(pc.if_else(missing, text, pa.scalar(None, pa.string())))
        out = pc.coalesce(out, pc.strftime(dates, format="%Y-%m"))
    return out, _bad(_present(text), out)


# --- numbers -----------------------------------------------------------------------------


def parse_int(text: pa.Array, type_: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Whole numbers; '45.0' (a spreadsheet's float) is 45, '45.5' or out of the column
    type's range is bad."""
    values = _try_cast(text, pa.int64())
    if values is not None:
        ok = pc.is_valid(values)
    else:
        t = pc.replace_substring_regex(_fill(text, ""), r"\.0+$", "")
        ok = pc.fill_null(pc.match_substring_regex(t, r"^-?\d{1,12}$"), False)
        values = pc.cast(pc.if_else(ok, t, "0"), pa.int64())
    lo, hi = _int_range(type_)
    ok = pc.and_(ok, pc.and_(pc.greater_equal(values, lo), pc.less_equal(values, hi)))
    out = pc.if_else(ok, values, pa.scalar(None, pa.int64()))
    return out.cast(type_), _bad(_present(text), out)


def _int_range(type_: pa.DataType) -> tuple[int, int]:
    info = np.iinfo(type_.to_pandas_dtype())
    return int(info.min), int(info.max)


_YUAN = r"^(?P<sign>[-+]?)(?P<i>\d{0,13})(?:\.(?P<f>\d*))?$"


def _has_exponent(text: pa.Array) -> bool:
    return bool(
        pc.any(pc.fill_null(pc.match_substring(text, "e", ignore_case=True), False)).as_py()
    )


def parse_money(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Yuan text → int64 fen, exactly (no float).

    Accepts `1234.5`, `.5`, `1,234.56` (commas only as thousands separators), `¥1234.56`,
    `1234.56元`; not exponents (`1e3`). More than two decimals: rounded half up on the third decimal
    (`0.125` → 13 fen, `0.1249` → 12 fen; negative amounts symmetrically, away from zero).
    """
    yuan = _try_cast(text, pa.decimal128(15, 2))
    if yuan is not None and not _has_exponent(text):
        fen = pc.multiply(yuan, pa.scalar(100, pa.decimal128(3, 0)))
        return pc.cast(fen, pa.int64()), _no_bad(len(text))
    t = pc.replace_substring_regex(_fill(text, ""), r"^[¥￥]|元$|\s", "")
    grouped_ok = pc.or_(
        pc.invert(pc.match_substring(t, ",")),
        pc.match_substring_regex(t, r"^-?\d{1,3}(?:,\d{3})+(?:\.\d*)?$"),
    )
    t = pc.replace_substring(t, ",", "")
    parts = pc.extract_regex(t, _YUAN)
    digits = pc.binary_length(pc.replace_substring_regex(t, r"[^0-9]", ""))
    ok = pc.and_(pc.and_(pc.is_valid(parts), grouped_ok), pc.greater(digits, 0))
    whole_text = pc.if_else(ok, pc.struct_field(parts, "i"), "0")
    whole_text = pc.if_else(pc.equal(whole_text, ""), "0", whole_text)
    whole = pc.cast(whole_text, pa.int64())
    frac = pc.fill_null(pc.if_else(ok, pc.struct_field(parts, "f"), "0"), "0")
    frac3 = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(frac, 3, "0"), 0, 3), pa.int64())
    cents = pc.divide(frac3, 10)  # integer division on int64
    round_up = pc.cast(pc.greater_equal(pc.subtract(frac3, pc.multiply(cents, 10)), 5), pa.int64())
    fen = pc.add(pc.add(pc.multiply(whole, 100), cents), round_up)
    negative = pc.equal(pc.fill_null(pc.struct_field(parts, "sign"), ""), "-")
    fen = pc.if_else(negative, pc.negate(fen), fen)
    out = pc.if_else(pc.and_(_present(text), ok), fen, pa.scalar(None, pa.int64()))
    return out, _bad(_present(text), out)


def parse_decimal(text: pa.Array, type_: pa.Decimal128Type) -> tuple[pa.Array, pa.Array]:
    """Decimal text with at most the column's scale and integer digits (else bad)."""
    whole_digits = max(type_.precision - type_.scale, 1)
    shape = rf"^-?\d{{1,{whole_digits}}}(?:\.\d{{1,{type_.scale}}})?$"
    ok = pc.fill_null(pc.match_substring_regex(text, shape), False)
    values = pc.cast(pc.if_else(ok, text, "0"), type_)
    out = pc.if_else(ok, values, pa.scalar(None, type_))
    return out, _bad(_present(text), out)


# --- coded values ------------------------------------------------------------------------


def map_values(name: str, text: pa.Array) -> pa.Array:
    """Replace accepted text forms of a coded column by its canonical values; others stay
    as given (the caller then checks the column's allowed set)."""
    aliases = VALUE_ALIASES.get(name)
    if not aliases:
        return text
    idx = pc.index_in(pc.utf8_lower(text), value_set=pa.array(list(aliases)))
    mapped = pc.take(pa.array(list(aliases.values())), idx)
    return pc.if_else(pc.is_valid(idx), mapped, text)
