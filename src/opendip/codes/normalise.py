"""Code text normalisation: what a hospital typed → the form the insurance edition uses."""

from __future__ import annotations

import re

import ibis

_FULL_WIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " ", "。": "."}
)
_EXTENSION = re.compile(r"X(\d{3})$")


def normalise_code(code: str | None) -> str | None:
    """Trim, half-width, upper-case; the national `x001` extension stays lower-case.

    >>> normalise_code(" ｋ３５．８００Ｘ００１ ")
    'K35.800x001'
    """
    if code is None:
        return None
    text = code.translate(_FULL_WIDTH).strip().replace(" ", "").upper()
    if not text:
        return None
    return _EXTENSION.sub(r"x\1", text)


def normalise_code_expr(col: ibis.Value) -> ibis.Value:
    """Batch form of `normalise_code` for ASCII input (full-width is handled at import)."""
    text = col.strip().upper()
    return text.re_replace(r"X(\d{3})$", r"x\1").nullif("")
