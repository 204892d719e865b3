"""Code text normalisation: what a hospital typed → the form the insurance edition uses."""

from __future__ import annotations

import ibis

_FULL_WIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " ", "。": "."}
)


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
    # After the leading chapter letter, the editions write "x" lower-case:
    # I10.x00, K35.800x001, 28.2x00.
    return text[0] + text[1:].replace("X", "x")


def normalise_code_expr(col: ibis.Value) -> ibis.Value:
    """Batch form of `normalise_code` for ASCII input (full-width is handled at import)."""
    text = col.strip().upper()
    return (text.substr(0, 1) + text.substr(1).replace("X", "x")).nullif("")
