"""What QC knows about the case fields: their kind, Chinese label, and how values print.

Kinds: "string", "int", "money" (int64 fen, printed as yuan), "date", "list" (list of
strings). Printing is defined once here for Python values; the batch engine builds the
same text with Ibis expressions (`opendip.qc.batch`), and the property tests hold them equal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pyarrow as pa

from opendip.contract import CASES

Kind = Literal["string", "int", "money", "date", "list"]

#: Shown in a message where a value is missing.
NULL_TEXT = "（空）"
#: What `strip()` removes in the batch engine (Ibis trims exactly these).
BLANK = " \t\n\r\v\f"


def _kind(name: str) -> Kind:
    column = CASES.column(name)
    if column.is_money:
        return "money"
    if column.is_list:
        return "list"
    if pa.types.is_date(column.type):
        return "date"
    if pa.types.is_integer(column.type):
        return "int"
    return "string"


#: Every case field QC may name, with its kind.
FIELD_KINDS: dict[str, Kind] = {c.name: _kind(c.name) for c in CASES.columns}
FIELD_LABELS: dict[str, str] = {c.name: c.label for c in CASES.columns}


def field_label(field: str) -> str:
    """Chinese label of a finding's field ("a+b" names several; "front_pages.x" a front-page
    field, shown as 病案首页·label)."""
    if field.startswith("front_pages."):
        from opendip.qc.frontpage import FRONT_PAGES

        name = field.split(".", 1)[1]
        names = FRONT_PAGES.names
        return "病案首页·" + (FRONT_PAGES.column(name).label if name in names else name)
    return "、".join(FIELD_LABELS.get(f, f) for f in field.split("+"))


def format_yuan_text(fen: int) -> str:
    """fen → yuan text with two decimals, no separators: -705 → '-7.05'."""
    sign = "-" if fen < 0 else ""
    magnitude = abs(int(fen))
    return f"{sign}{magnitude // 100}.{magnitude % 100:02d}"


def render(value: Any, kind: Kind) -> str | None:
    """A value as it appears in a finding (None stays None)."""
    if value is None:
        return None
    if kind == "money":
        return format_yuan_text(int(value))
    if kind == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        return value.isoformat()
    if kind == "list":
        return ",".join(str(v) for v in value if v is not None)
    return str(value)


def is_present(value: Any, kind: Kind) -> bool:
    """`required` semantics: strings must be non-blank; other kinds non-null."""
    if value is None:
        return False
    if kind == "string":
        return str(value).strip(BLANK) != ""
    return True
