"""Exact formatting of report values for people (HTML, PDF): Decimal only, never float.

Units (`opendip.reports.model.Unit`):

- ``fen``: integer fen shown as 元 with thousands separators and 2 decimals
  (305500000 → "3,055,000.00"); `fmt_wan` shows 万元 ("305.50").
- ``ratio``: a Decimal share shown as a percentage with 2 decimals ("93.35%").
- ``count`` / ``days``: integers with thousands separators ("12,345"); a non-integer
  (e.g. mean days) keeps its decimals.
- ``score`` / ``point_value`` / ``coefficient``: the Decimal as the builder gave it (its own
  decimal places, so a column stays aligned), in plain notation (never "1E+2"), with
  thousands separators, at most 6 decimals.
- ``text``: the value as a string.

Rounding is half up (away from zero on ties, both signs), once, here. Negative numbers use
the minus sign U+2212 ("−1,234.56"), like the change strings ("−12.70%"); missing values
(None) are shown as an em dash "—".
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from opendip.reports.model import Unit, Value

DASH = "—"
MINUS = "−"  # U+2212
MAX_DECIMALS = 6

_CENT = Decimal("0.01")
_FEN_PER_YUAN = Decimal(100)
_FEN_PER_WAN = Decimal(1_000_000)
_HUNDRED = Decimal(100)


def to_decimal(value: object) -> Decimal | None:
    """The exact number of an int/Decimal/float/numeric string; None when not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return None
    else:
        return None
    return d if d.is_finite() else None


def _group(d: Decimal, places: int) -> str:
    """`d` rounded half up to `places` decimals, thousands separators, U+2212 for minus."""
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if q == 0:
        q = abs(q)  # no "−0.00"
    text = format(q, f",.{places}f")
    return MINUS + text[1:] if text.startswith("-") else text


def decimal_places(d: Decimal) -> int:
    """Decimal places `d` is shown with: its own, at most MAX_DECIMALS."""
    exponent = d.as_tuple().exponent
    return min(-exponent, MAX_DECIMALS) if isinstance(exponent, int) and exponent < 0 else 0


def yuan(fen: Value) -> Decimal | None:
    """Exact 元 of an amount in fen, rounded half up to the cent (None when not a number)."""
    d = to_decimal(fen)
    if d is None:
        return None
    return (d / _FEN_PER_YUAN).quantize(_CENT, rounding=ROUND_HALF_UP)


def fmt_value(value: Value, unit: Unit) -> str:
    """A report value as people read it, by unit (see the module docstring)."""
    if value is None:
        return DASH
    if unit == "text":
        return str(value)
    d = to_decimal(value)
    if d is None:
        return str(value)
    if unit == "fen":
        return _group(d / _FEN_PER_YUAN, 2)
    if unit == "ratio":
        return _group(d * _HUNDRED, 2) + "%"
    if unit in ("count", "days") and d == d.to_integral_value():
        return _group(d, 0)
    return _group(d, decimal_places(d))


def fmt_wan(fen: Value) -> str:
    """An amount in fen as 万元, 2 decimals half up: 305500000 → "305.50"."""
    d = to_decimal(fen)
    return DASH if d is None else _group(d / _FEN_PER_WAN, 2)


def _sign(d: Decimal) -> str:
    return "+" if d > 0 else MINUS if d < 0 else ""


def fmt_change(value: Value, previous: Value, unit: Unit) -> str:
    """Change of `value` against `previous`.

    Ratios: the difference in percentage points ("+1.20个百分点"; defined also when the
    previous ratio is 0). Other numeric units: the relative change against |previous|
    ("−12.70%", "+3.10%"; so a loss shrinking from −100 to −50 is "+50.00%"). "—" when
    either value is missing or not a number, for text, and for a zero base.
    """
    v, p = to_decimal(value), to_decimal(previous)
    if v is None or p is None or unit == "text":
        return DASH
    if unit == "ratio":
        diff = ((v - p) * _HUNDRED).quantize(_CENT, rounding=ROUND_HALF_UP)
        return f"{_sign(diff)}{abs(diff)}个百分点"
    if p == 0:
        return DASH
    rel = ((v - p) / abs(p) * _HUNDRED).quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{_sign(rel)}{format(abs(rel), ',.2f')}%"


def unit_suffix(unit: Unit) -> str:
    """Unit word a header or value needs so the number is unambiguous ("元" for money)."""
    return "元" if unit == "fen" else ""


#: Report.kind → Chinese name.
KIND_LABELS = {
    "monthly": "月度报告",
    "annual": "年度报告",
    "publication": "结算公示",
    "hospital": "院端分析",
}

#: Report.provenance keys → Chinese labels (unknown keys are shown as they are).
PROVENANCE_LABELS = {
    "run_dir": "运行目录",
    "run_kind": "运行类型",
    "manifest_sha256": "清单哈希（SHA-256）",
    "manifest_hash": "清单哈希",
    "policy_file": "政策文件",
    "policy_version": "政策版本",
    "code_version": "程序版本",
    "hospital_id": "医疗机构代码",
    "near_band": "临界区间宽度",
    "scope": "分析范围",
    "empty": "无病例",
    "generated_at": "生成时间",
    "settlement_code_commit": "结算程序提交",
}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


#: Side inputs whose hashes the provenance lists (`<key>_sha256`).
SIDE_INPUT_LABELS = {
    "previous_cases": "上年度结算清单",
    "previous_grouped": "上年度入组结果",
    "qc_case_status": "质控结果",
    "supervision_leads": "监管线索",
    "supervision_indicators": "监管指标",
    "reviews": "特例单议结论",
}


def provenance_label(key: str) -> str:
    if key in PROVENANCE_LABELS:
        return PROVENANCE_LABELS[key]
    if key.endswith("_sha256"):
        base = key.removesuffix("_sha256")
        return f"{SIDE_INPUT_LABELS.get(base, base)}哈希（SHA-256）"
    return key
