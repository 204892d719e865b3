"""Code text normalisation: what a hospital typed → the form the insurance edition uses."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

_FULL_WIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " ", "。": "."}
)


def normalise_code(code: str | None) -> str | None:
    """Trim, drop inner white space, half-width, upper-case; the national ``x`` of the
    editions (``I10.x00``, ``K35.800x001``, ``28.2x00``) stays lower-case.

    >>> normalise_code(" ｋ３５．８００Ｘ００１ ")
    'K35.800x001'
    """
    if code is None:
        return None
    text = "".join(code.translate(_FULL_WIDTH).split()).upper()
    if not text:
        return None
    # After the leading chapter letter, the editions write "x" lower-case.
    return text[0] + text[1:].replace("X", "x")


def normalise_code_expr(col: ir.StringValue) -> ir.StringValue:
    """Batch form of `normalise_code` (same answer for ASCII input; full-width text is
    converted at import)."""
    text = col.re_replace(r"\s", "").upper()
    return (text.substr(0, 1) + text.substr(1).replace("X", "x")).nullif(ibis.literal(""))
