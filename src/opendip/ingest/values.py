"""Vectorised parsing of text columns into contract types, with a bad-value mask each.

Every parser returns (typed array, bad mask): bad = a value was given but cannot be used.
Missing values (empty text) are null and not bad; required-ness is checked by the caller.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LIST_SEPARATORS = r"[|;；,，、\s]+"
DIAGNOSIS_SHAPE = r"^[A-Z][0-9]{2}(\.[0-9x][0-9x]{0,3}(x[0-9]{3})?)?$"
PROCEDURE_SHAPE = r"^[0-9]{2}(\.[0-9x]{1,4}(x[0-9]{3})?)?$"

#: Text forms accepted for coded columns → canonical value.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "insurance_type": {
        "employee": "employee", "职工": "employee", "310": "employee", "城镇职工": "employee",
        "职工基本医疗保险": "employee", "城镇职工基本医疗保险": "employee",
        "resident": "resident", "居民": "resident", "390": "resident", "城乡居民": "resident",
        "城乡居民基本医疗保险": "resident",
    },
    "sex": {"1": "1", "男": "1", "m": "1", "male": "1", "2": "2", "女": "2", "f": "2",
            "female": "2", "0": "0", "未知": "0", "未知的性别": "0", "9": "9", "未说明": "9",
            "未说明的性别": "9"},
    "level": {"tertiary": "tertiary", "三级": "tertiary", "三甲": "tertiary", "三级甲等": "tertiary",
              "三级乙等": "tertiary", "secondary": "secondary", "二级": "secondary",
              "二甲": "secondary", "二级甲等": "secondary", "二级乙等": "secondary",
              "primary": "primary", "一级": "primary", "unrated": "unrated", "未定级": "unrated"},
    "ownership": {"public": "public", "公立": "public", "private": "private", "民营": "private",
                  "私立": "private"},
}  # fmt: skip


def clean_text(arr: pa.Array) -> pa.Array:
    """Trim (ASCII and ideographic spaces); empty → null."""
    text = pc.utf8_trim(arr.cast(pa.string()), " \t\r\n\u3000\ufeff")
    return pc.if_else(pc.equal(text, ""), None, text)


def _present(arr: pa.Array) -> pa.Array:
    return pc.is_valid(arr)


def _bad(present: pa.Array, parsed: pa.Array) -> pa.Array:
    return pc.and_(present, pc.is_null(parsed))


def normalise_codes(text: pa.Array) -> pa.Array:
    """NFKC (full-width → half-width), upper-case; 'x' lower-case after the first char."""
    upper = pc.utf8_upper(pc.utf8_normalize(text, "NFKC"))
    upper = pc.replace_substring(upper, " ", "")
    head = pc.utf8_slice_codeunits(upper, 0, 1)
    tail = pc.replace_substring(pc.utf8_slice_codeunits(upper, 1), "X", "x")
    return pc.binary_join_element_wise(head, tail, "")


def parse_code(text: pa.Array, shape: str) -> tuple[pa.Array, pa.Array]:
    codes = normalise_codes(text)
    ok = pc.match_substring_regex(codes, shape)
    return pc.if_else(ok, codes, None), _bad(_present(text), pc.if_else(ok, codes, None))


def parse_code_list(text: pa.Array, shape: str) -> tuple[pa.Array, pa.Array]:
    """'A|B, C' → ['A','B','C'] (blank → []); a row is bad if any element is malformed."""
    joined = pc.replace_substring_regex(pc.fill_null(text, ""), LIST_SEPARATORS, "|")
    joined = pc.utf8_trim(joined, "|")
    lists = pc.split_pattern(joined, "|")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    nonempty = pc.not_equal(flat, "")
    codes = normalise_codes(flat)
    ok = pc.match_substring_regex(codes, shape)
    bad_rows = pc.unique(pc.filter(parents, pc.and_(nonempty, pc.invert(ok))))
    keep = pc.and_(nonempty, ok)
    kept_parents = pc.filter(parents, keep).to_numpy()
    sizes = np.bincount(kept_parents, minlength=len(text))
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    out = pa.ListArray.from_arrays(offsets, pc.filter(codes, keep))
    bad = pc.is_in(pa.array(range(len(text)), pa.int64()), value_set=bad_rows.cast(pa.int64()))
    return out, bad


_DATE = r"^(?P<y>\d{4})[-/.年]?(?P<m>\d{1,2})[-/.月]?(?P<d>\d{1,2})"


def parse_date(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    parts = pc.extract_regex(pc.fill_null(text, ""), _DATE)
    y, m, d = (pc.struct_field(parts, k) for k in ("y", "m", "d"))
    iso = pc.binary_join_element_wise(y, pc.utf8_lpad(m, 2, "0"), pc.utf8_lpad(d, 2, "0"), "-")
    parsed = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime is lenient (2026-02-30 → 2026-03-02): keep only dates that round-trip.
    exact = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), iso)
    dates = pc.cast(parsed, pa.date32())
    dates = pc.if_else(pc.and_(_present(text), pc.fill_null(exact, False)), dates, None)
    return dates, _bad(_present(text), dates)


def parse_month(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    parts = pc.extract_regex(pc.fill_null(text, ""), r"^(?P<y>\d{4})[-/.年]?(?P<m>\d{1,2})")
    y, m = pc.struct_field(parts, "y"), pc.struct_field(parts, "m")
    month = pc.binary_join_element_wise(y, pc.utf8_lpad(m, 2, "0"), "-")
    mm = pc.cast(pc.fill_null(m, "0"), pa.int32())
    ok = pc.and_(pc.is_valid(month), pc.and_(pc.greater_equal(mm, 1), pc.less_equal(mm, 12)))
    out = pc.if_else(pc.and_(_present(text), ok), month, None)
    return out, _bad(_present(text), out)


def parse_int(text: pa.Array, type_: pa.DataType) -> tuple[pa.Array, pa.Array]:
    t = pc.replace_substring_regex(pc.fill_null(text, ""), r"\.0+$", "")
    ok = pc.match_substring_regex(t, r"^-?\d{1,12}$")
    values = pc.cast(pc.if_else(ok, t, "0"), pa.int64())
    out = pc.if_else(pc.and_(_present(text), ok), values, None).cast(type_)
    return out, _bad(_present(text), out)


def parse_money(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Yuan text → int64 fen exactly. Beyond 2 decimals: half up at the third decimal."""
    t = pc.replace_substring_regex(pc.fill_null(text, ""), r"[,，\s]", "")
    parts = pc.extract_regex(t, r"^(?P<sign>-?)(?P<i>\d{1,13})(?:\.(?P<f>\d*))?$")
    ok = pc.is_valid(parts)
    whole = pc.cast(pc.if_else(ok, pc.struct_field(parts, "i"), "0"), pa.int64())
    frac = pc.fill_null(pc.if_else(ok, pc.struct_field(parts, "f"), "0"), "0")
    frac3 = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(frac, 3, "0"), 0, 3), pa.int64())
    fen = pc.add(pc.multiply(whole, 100), pc.divide(frac3, 10))
    fen = pc.add(
        fen,
        pc.cast(
            pc.greater_equal(pc.subtract(frac3, pc.multiply(pc.divide(frac3, 10), 10)), 5),
            pa.int64(),
        ),
    )
    negative = pc.equal(pc.fill_null(pc.struct_field(parts, "sign"), ""), "-")
    fen = pc.if_else(negative, pc.negate(fen), fen)
    out = pc.if_else(pc.and_(_present(text), ok), fen, None)
    return out, _bad(_present(text), out)


def parse_decimal(text: pa.Array, type_: pa.DataType) -> tuple[pa.Array, pa.Array]:
    t = pc.fill_null(text, "")
    ok = pc.match_substring_regex(t, r"^-?\d+(\.\d+)?$")
    values = pc.cast(pc.if_else(ok, t, "0"), type_)
    out = pc.if_else(pc.and_(_present(text), ok), values, None)
    return out, _bad(_present(text), out)


def map_values(name: str, text: pa.Array) -> pa.Array:
    aliases = VALUE_ALIASES.get(name)
    if not aliases:
        return text
    keys = pa.array(list(aliases))
    idx = pc.index_in(pc.utf8_lower(text), value_set=keys)
    mapped = pc.take(pa.array(list(aliases.values())), idx)
    return pc.if_else(pc.is_valid(idx), mapped, text)
