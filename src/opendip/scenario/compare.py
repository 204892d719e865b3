"""Comparing variant settlement runs with the base (Ibis over the runs' own tables).

Per variant × hospital × pool: DIP amount, fund payable, point value, surplus/deficit vs FFS,
clearing total, each with its change vs the base in fen and in % (half-up, 2 decimals, away
from zero for losses), and the number of the hospital's cases whose group changed. Per variant
× pool: point value and totals with their change, winners/losers and the largest gain/loss.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from opendip.engine import connect
from opendip.scoring.exact import big, decimal_to_units, div_half_up, units_to_decimal

#: Hospital-table columns carried from each variant run.
CARRIED = (
    "hospital_id",
    "pool",
    "level",
    "cases",
    "total_score",
    "point_value",
    "dip_amount_fen",
    "fund_payable_fen",
    "ffs_fund_fen",
    "dip_minus_ffs_fen",
    "result",
    "clearing_total_fen",
    "clearing_payment_fen",
)
#: Money columns compared with the base: (column, change column prefix).
COMPARED = (
    ("dip_amount_fen", "dip"),
    ("fund_payable_fen", "fund"),
    ("dip_minus_ffs_fen", "surplus"),
    ("clearing_total_fen", "clearing"),
)
PCT_T = "decimal(12, 2)"


def pct(change: ir.IntegerValue, base: ir.IntegerValue) -> ir.DecimalValue:
    """change ÷ |base| × 100, 2 decimals, half up away from zero; null when base is 0."""
    mag = div_half_up(big(change.abs()) * 10_000, big(base.abs()))
    signed = ibis.ifelse(change < 0, -mag, mag)
    return ibis.ifelse(base == 0, ibis.null(PCT_T), units_to_decimal(signed, 2, PCT_T))


def _changed_groups(
    con: ibis.BaseBackend, grouped: dict[str, Path], cases: Path, base_id: str
) -> ir.Table | None:
    """variant, hospital_id, pool, cases_changed_group for variants grouped again."""
    regrouped = {k: v for k, v in grouped.items() if k != base_id and v != grouped[base_id]}
    if not regrouped:
        return None
    raw = con.read_parquet(str(cases))
    raw = raw.select("case_id", "hospital_id", pool=raw.insurance_type.cast("string"))
    base = con.read_parquet(str(grouped[base_id])).select("case_id", b_code="group_code")
    parts = []
    for vid, path in sorted(regrouped.items()):
        g = con.read_parquet(str(path)).select("case_id", v_code="group_code")
        j = raw.join(base, "case_id").join(g, "case_id")
        moved = j.filter((j.b_code != j.v_code) | (j.b_code.isnull() != j.v_code.isnull()))
        parts.append(
            moved.group_by(["hospital_id", "pool"])
            .aggregate(cases_changed_group=moved.count())
            .mutate(variant=ibis.literal(vid))
        )
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def compare_runs(
    runs: dict[str, Path],
    grouped: dict[str, Path],
    cases: Path,
    names: dict[str, str],
    engine: str = "duckdb",
    base_id: str = "base",
) -> tuple[pa.Table, pa.Table]:
    """(per-hospital comparison, region summary) of the variant runs against `base_id`."""
    con = connect(engine)  # type: ignore[arg-type]
    order = {vid: i for i, vid in enumerate(runs)}
    tables = []
    for vid, run in runs.items():
        t = con.read_parquet(str(run / "hospitals.parquet")).select(*CARRIED)
        tables.append(
            t.mutate(
                variant=ibis.literal(vid),
                variant_name=ibis.literal(names[vid]),
                variant_order=ibis.literal(order[vid], type="int32"),
            )
        )
    allv = ibis.union(*tables)
    base = allv.filter(allv.variant == base_id).select(
        "hospital_id",
        "pool",
        **{f"base_{c}": c for c, _ in COMPARED},
        base_point_value="point_value",
    )
    h = allv.left_join(base, ["hospital_id", "pool"]).drop("hospital_id_right", "pool_right")
    muts = {}
    for col, prefix in COMPARED:
        b = h[f"base_{col}"].fill_null(0)
        muts[f"{prefix}_change_fen"] = h[col] - b
    h = h.mutate(**muts)
    h = h.mutate(
        **{
            f"{prefix}_change_pct": pct(h[f"{prefix}_change_fen"], h[f"base_{col}"].fill_null(0))
            for col, prefix in COMPARED
        },
        dip_ffs_ratio=ibis.ifelse(
            h.ffs_fund_fen > 0,
            units_to_decimal(
                div_half_up(big(h.fund_payable_fen.abs()) * 10_000, big(h.ffs_fund_fen)),
                4,
                "decimal(12, 4)",
            ),
            ibis.null("decimal(12, 4)"),
        ),
    )
    moved = _changed_groups(con, grouped, cases, base_id)
    if moved is not None:
        h = h.left_join(moved, ["variant", "hospital_id", "pool"]).drop(
            "variant_right", "hospital_id_right", "pool_right"
        )
        h = h.mutate(cases_changed_group=h.cases_changed_group.fill_null(0).cast("int64"))
    else:
        h = h.mutate(cases_changed_group=ibis.literal(0, type="int64"))
    h = h.order_by(["variant_order", "hospital_id", "pool"])
    hospitals = h.drop("variant_order").to_pyarrow()

    s = h.group_by(["variant_order", "variant", "variant_name", "pool"]).aggregate(
        hospitals=h.count(),
        cases=h.cases.sum().cast("int64"),
        point_value=h.point_value.max(),
        base_point_value=h.base_point_value.max(),
        dip_amount_fen=h.dip_amount_fen.sum().cast("int64"),
        base_dip_amount_fen=h.base_dip_amount_fen.fill_null(0).sum().cast("int64"),
        fund_payable_fen=h.fund_payable_fen.sum().cast("int64"),
        clearing_total_fen=h.clearing_total_fen.sum().cast("int64"),
        base_clearing_total_fen=h.base_clearing_total_fen.fill_null(0).sum().cast("int64"),
        hospitals_gaining=(h.clearing_change_fen > 0).sum().cast("int64"),
        hospitals_losing=(h.clearing_change_fen < 0).sum().cast("int64"),
        largest_gain_fen=h.clearing_change_fen.max().cast("int64"),
        largest_loss_fen=h.clearing_change_fen.min().cast("int64"),
        hospitals_in_deficit=(h.result == "deficit").sum().cast("int64"),
        cases_changed_group=h.cases_changed_group.sum().cast("int64"),
    )
    s = s.mutate(
        clearing_change_fen=s.clearing_total_fen - s.base_clearing_total_fen,
        point_value_change_pct=pct(
            decimal_to_units(s.point_value, 6) - decimal_to_units(s.base_point_value, 6),
            decimal_to_units(s.base_point_value, 6).fill_null(0),
        ),
    )
    summary = s.order_by(["variant_order", "pool"]).drop("variant_order").to_pyarrow()
    return hospitals, summary
