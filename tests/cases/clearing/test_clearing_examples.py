"""Worked clearing examples (tests/cases/clearing/*.yaml), checked twice.

Each file: policy overrides on tests/scoring/base-policy.yaml, hospitals, cases (one group per
case whose mean is the case's cost, so every case is normal and its score is the given score ×
the hospital coefficient), optional special reviews and assessment scores, and the expected
figures worked by hand in the file's comments (yuan). The run is `settle_year`; the figures
are then recomputed here independently, in plain Python Decimal from the inputs and the
policy (point value, bands, withholding by month, deposit return, reserve flows), and every
hospital and pool line of the run must equal that recomputation to the fen.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[2] / "scoring"))

import builders as b

from opendip.policy import Policy
from opendip.policy.load import _DecimalLoader
from opendip.settlement import Inputs, settle_year

HERE = Path(__file__).parent
FILES = sorted(HERE.glob("*.yaml"))
YEAR = 2026


def _fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def _round(value: Decimal, places: int = 0) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def load(path: Path) -> dict[str, Any]:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)
    doc["pf"] = b.policy(**(doc.get("policy") or {}))
    cases = []
    for c in doc["cases"]:
        month = str(c.get("month", f"{YEAR}-03"))
        cases.append(
            {
                "case_id": c["case_id"],
                "hospital_id": c["hospital_id"],
                "pool": c.get("pool", "employee"),
                "month": month,
                "score": None if c.get("unmatched") else Decimal(str(c["score"])),
                "cost": _fen(c["total_cost_yuan"]),
                "fund": _fen(c["fund_paid_yuan"]),
                "copay": _fen(c.get("personal_copay_yuan", 0)),
                "selfpay": _fen(c.get("personal_selfpay_yuan", 0)),
                "review": c.get("review"),
            }
        )
    doc["case_rows"] = cases
    return doc


def tables(doc: dict[str, Any]) -> dict[str, pa.Table | None]:
    """The run's input tables: cases, grouped, directory, hospitals, reviews, assessment."""
    cases, grouped, groups, reviews = [], [], [], []
    for c in doc["case_rows"]:
        y, m = (int(x) for x in c["month"].split("-"))
        cases.append(
            b.case(
                c["case_id"],
                hospital_id=c["hospital_id"],
                insurance_type=c["pool"],
                total_cost=c["cost"],
                fund_paid=c["fund"],
                personal_copay=c["copay"],
                personal_selfpay=c["selfpay"],
                settle_month=c["month"],
                discharge_date=dt.date(y, m, 15),
            )
        )
        if c["score"] is None:
            grouped.append(
                b.grouped(
                    c["case_id"],
                    group_code=None,
                    group_type="unmatched",
                    base_score=None,
                    match_step="unmatched",
                )
            )
            continue
        code = f"G-{c['case_id']}"
        groups.append(
            b.group(
                code,
                score=c["score"],
                mean_cost_fen=c["cost"],
                mean_cost_tertiary_fen=c["cost"],
                mean_cost_secondary_fen=c["cost"],
                mean_cost_primary_fen=c["cost"],
            )
        )
        grouped.append(b.grouped(c["case_id"], code, base_score=c["score"]))
        if c["review"]:
            reviews.append({"case_id": c["case_id"], **c["review"]})
    hospitals = [b.hospital(h["hospital_id"], h.get("level", "tertiary")) for h in doc["hospitals"]]
    assessment = None
    if doc.get("assessment"):
        items = sorted(doc["assessment"].items())
        assessment = pa.table(
            {
                "hospital_id": [k for k, _ in items],
                "assessment_score": [float(v) for _, v in items],
            }
        )
    return {
        "cases": b.cases_table(cases),
        "grouped": b.grouped_table(grouped),
        "directory": b.directory_table(groups),
        "hospitals": b.hospitals_table(hospitals),
        "reviews": b.reviews_table(reviews) if reviews else None,
        "assessment": assessment,
    }


_RUNS: dict[str, Any] = {}


def run_file(con: Any, path: Path) -> tuple[dict[str, Any], Any]:
    """(example, its clearing), run once per file for both tests."""
    if str(path) not in _RUNS:
        doc = load(path)
        _RUNS[str(path)] = (doc, run(con, doc))
    return _RUNS[str(path)]


def run(con: Any, doc: dict[str, Any]):
    t = tables(doc)
    # Table names of their own per example: Ibis caches an expression's result by the
    # expression, so re-created tables of the same name could meet a live cached result.
    tag = f"x{len(_RUNS)}"
    inputs = Inputs(
        con.create_table(f"c_{tag}", t["cases"], overwrite=True),
        con.create_table(f"g_{tag}", t["grouped"], overwrite=True),
        con.create_table(f"d_{tag}", t["directory"], overwrite=True),
        con.create_table(f"h_{tag}", t["hospitals"], overwrite=True),
        doc["pf"],
        reviews=t["reviews"],
    )
    return settle_year(inputs, YEAR, assessment=t["assessment"])


# ---------------------------------------------------------------------------------------------
# The independent recomputation (plain Python, from the inputs and the policy)


def _coefficient(pol: Policy, level: str) -> Decimal:
    return Decimal(pol.scoring.hospital_coefficient.levels[level])


def _settled(pol: Policy, c: dict[str, Any], level: str) -> Decimal:
    review = c["review"]
    if review and review.get("decision") in ("通过", "accept") and review.get("reviewed_score"):
        return Decimal(str(review["reviewed_score"]))
    return _round(c["score"] * _coefficient(pol, level), pol.scoring.score_decimals)


def band_adjustment(pol: Policy, d: int, f: int) -> tuple[str, int]:
    for band in pol.settlement.ffs_bands:
        if band.ratio_min is not None and Decimal(d) < band.ratio_min * f:
            continue
        if band.ratio_max is not None and Decimal(d) >= band.ratio_max * f:
            continue
        if band.rule == "keep_surplus":
            surplus = max(d - f, 0)
            share = Decimal(1) if band.share is None else band.share
            kept = _round(surplus * share)
            if band.cap_share is not None:
                kept = min(kept, _round(max(f, 0) * band.cap_share))
            return band.rule, int(kept) - surplus
        if band.rule == "share_loss":
            return band.rule, int(_round(max(f - d, 0) * band.share))
        return band.rule, 0
    return "none", 0


def recompute(doc: dict[str, Any]) -> tuple[dict[str, Decimal], dict, dict]:
    pf = doc["pf"]
    final = pf.periods()[-1][2]
    s = final.settlement
    levels = {h["hospital_id"]: h.get("level", "tertiary") for h in doc["hospitals"]}
    dip = [c for c in doc["case_rows"] if c["score"] is not None]
    settled = {c["case_id"]: _settled(final, c, levels[c["hospital_id"]]) for c in dip}
    pvs, reserve, non_dip_out = {}, {}, {}
    for pool in sorted({c["pool"] for c in dip}):
        budget = _fen(s.budget[pool].fund_budget_yuan)
        reserve[pool] = int(_round(budget * s.reserve_share))
        non_dip = sum(
            c["fund"] for c in doc["case_rows"] if c["score"] is None and c["pool"] == pool
        )
        non_dip_out[pool] = non_dip if s.deduct_non_dip_ffs else 0
        available = budget - reserve[pool] - non_dip_out[pool]
        score = sum(settled[c["case_id"]] for c in dip if c["pool"] == pool)
        personal = sum(c["copay"] + c["selfpay"] for c in dip if c["pool"] == pool)
        if s.point_value_formula == "fund_plus_personal":
            num = Decimal(available + personal) / 100
        elif s.point_value_formula == "fund_only":
            num = Decimal(available) / 100
        else:
            num = Decimal(available) / 100 / s.budget[pool].reimbursement_ratio
        pvs[pool] = _round(num / score, s.point_value_decimals)

    def amount(c: dict[str, Any], pv: Decimal) -> int:
        return int(_round(settled[c["case_id"]] * pv * 100))

    scores = {str(k): Decimal(str(v)) for k, v in (doc.get("assessment") or {}).items()}
    hosp: dict[tuple[str, str], dict[str, Any]] = {}
    start = pf.at(dt.date(YEAR, 1, 1))
    for key in sorted({(c["hospital_id"], c["pool"]) for c in dip}):
        mine = [c for c in dip if (c["hospital_id"], c["pool"]) == key]
        pv = pvs[key[1]]
        dip_fen = sum(amount(c, pv) for c in mine)
        personal = sum(c["copay"] + c["selfpay"] for c in mine)
        fund_payable = dip_fen - personal
        ffs = sum(c["fund"] for c in mine)
        cost = sum(c["cost"] for c in mine)
        d, f = (dip_fen, cost) if s.ffs_basis == "total" else (fund_payable, ffs)
        rule, adjustment = band_adjustment(final, d, f)
        # monthly advances at the budget point value, withholding share in force that month
        withheld = advances = 0
        bpv = Decimal(start.settlement.budget[key[1]].budget_point_value)
        by_month: dict[str, list] = defaultdict(list)
        for c in mine:
            by_month[c["month"]].append(c)
        for month, cs in sorted(by_month.items()):
            share = pf.at(dt.date.fromisoformat(f"{month}-01")).settlement.withholding_share
            fp = sum(amount(c, bpv) - c["copay"] - c["selfpay"] for c in cs)
            w = int(_round(max(fp, 0) * share))
            withheld += w
            advances += fp - w
        returned = 0
        if key[0] in scores:
            band = next(a for a in s.assessment_bands if scores[key[0]] >= a.min_score)
            returned = int(_round(withheld * band.return_share))
        adjusted = fund_payable + adjustment
        total = adjusted - (withheld - returned)
        hosp[key] = {
            "dip_amount_fen": dip_fen,
            "fund_payable_fen": fund_payable,
            "ffs_fund_fen": ffs,
            "compare_dip_fen": d,
            "compare_ffs_fen": f,
            "dip_minus_ffs_fen": d - f,
            "ffs_rule": rule,
            "dip_ffs_ratio": _round(Decimal(d) / f, 4) if f > 0 else None,
            "adjustment_fen": adjustment,
            "adjusted_fen": adjusted,
            "withheld_fen": withheld,
            "returned_fen": returned,
            "deposit_deducted_fen": withheld - returned,
            "clearing_total_fen": total,
            "advances_fen": advances,
            "clearing_payment_fen": total - advances,
        }
    pools = {}
    for pool in pvs:
        rows = [v for k, v in hosp.items() if k[1] == pool]
        uses = sum(r["adjustment_fen"] for r in rows if r["adjustment_fen"] > 0)
        back = -sum(r["adjustment_fen"] for r in rows if r["adjustment_fen"] < 0)
        deducted = sum(r["deposit_deducted_fen"] for r in rows)
        returns = (back if s.surplus_clawback_to == "reserve" else 0) + (
            deducted if s.deducted_deposit_to == "reserve" else 0
        )
        pools[pool] = {
            "non_dip_deducted_fen": non_dip_out[pool],
            "reserve_opening_fen": reserve[pool],
            "reserve_uses_fen": uses,
            "reserve_returns_fen": returns,
            "reserve_closing_fen": reserve[pool] - uses + returns,
            "kept_in_fund_fen": back + deducted - returns,
            "clearing_total_fen": sum(r["clearing_total_fen"] for r in rows),
            "clearing_payment_fen": sum(r["clearing_payment_fen"] for r in rows),
        }
    return pvs, hosp, pools


def _check(row: dict[str, Any], expect: dict[str, Any], where: str) -> None:
    for key, value in expect.items():
        if key.endswith("_yuan"):
            col = key[: -len("_yuan")] + "_fen"
            if col not in row and key in ("adjusted_yuan",):
                col = "adjusted_fen"
            assert row[col] == _fen(value), f"{where}.{key}: {row[col]} ≠ {_fen(value)}"
        elif isinstance(value, Decimal | int) and not isinstance(value, bool):
            assert Decimal(str(row[key])) == Decimal(str(value)), f"{where}.{key}"
        else:
            assert row[key] == value, f"{where}.{key}: {row[key]!r} ≠ {value!r}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_clearing_example_by_hand(con, path):
    doc, r = run_file(con, path)
    expect = doc["expect"]
    assert r.point_values == {k: Decimal(str(v)) for k, v in expect["point_values"].items()} | {
        k: v for k, v in r.point_values.items() if k not in expect["point_values"]
    }
    pools = {p["pool"]: p for p in r.pools.to_pylist()}
    for pool, fields in (expect.get("pools") or {}).items():
        _check(pools[pool], fields, pool)
        assert pools[pool]["clearing_identity"] and pools[pool]["cases_equal_hospitals"]
    hospitals = {f"{h['hospital_id']}/{h['pool']}": h for h in r.hospitals.to_pylist()}
    for key, fields in (expect.get("hospitals") or {}).items():
        _check(hospitals[key], fields, key)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_clearing_example_recomputed_independently(con, path):
    doc, r = run_file(con, path)
    pvs, hosp, pools = recompute(doc)
    assert r.point_values == pvs
    got = {(h["hospital_id"], h["pool"]): h for h in r.hospitals.to_pylist()}
    assert set(got) == set(hosp)
    for key, want in hosp.items():
        for col, value in want.items():
            assert got[key][col] == value, (key, col, got[key][col], value)
    for p in r.pools.to_pylist():
        for col, value in pools[p["pool"]].items():
            assert p[col] == value, (p["pool"], col, p[col], value)
