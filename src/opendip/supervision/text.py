"""Chinese evidence text built inside Ibis expressions (no per-row Python)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def s(value: ir.Value) -> ir.StringValue:
    """Any value as text ('—' when null)."""
    return value.cast("string").fill_null("—")


def yuan(fen: ir.NumericValue) -> ir.StringValue:
    """Fen (any numeric, rounded to whole fen) as yuan with two decimals: 123456 → '1234.56'."""
    whole = fen.round().cast("int64")
    return (
        (whole.cast("decimal(20, 0)") / ibis.literal(100, type="decimal(20, 0)"))
        .cast("decimal(20, 2)")
        .cast("string")
        .fill_null("—")
    )


def pct(share: ir.NumericValue, decimals: int = 1) -> ir.StringValue:
    """A share 0–1 as a percentage text: 0.1234 → '12.3%'."""
    text = (share * 100).round(decimals).cast(f"decimal(20, {decimals})").cast("string") + "%"
    return text.fill_null("—")


def num(value: ir.NumericValue, decimals: int = 1) -> ir.StringValue:
    return value.round(decimals).cast(f"decimal(20, {decimals})").cast("string").fill_null("—")


def concat(*parts: ir.StringValue | str) -> ir.StringValue:
    out: ir.StringValue | None = None
    for p in parts:
        v = ibis.literal(p) if isinstance(p, str) else p
        out = v if out is None else out + v
    assert out is not None
    return out
