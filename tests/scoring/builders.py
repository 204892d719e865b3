"""Small hand-made inputs for scoring and settlement tests."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from opendip.contract import tables as ct
from opendip.policy import PolicyFile
from opendip.policy.load import _DecimalLoader

BASE_POLICY = Path(__file__).with_name("base-policy.yaml")


def demo_tree() -> dict[str, Any]:
    """The test policy tree (tests/scoring/base-policy.yaml)."""
    return yaml.load(BASE_POLICY.read_text(encoding="utf-8"), Loader=_DecimalLoader)


def merge(tree: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "values" not in value:
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def policy(**overrides: Any) -> PolicyFile:
    """The demo policy with nested overrides, e.g. policy(scoring={"score_decimals": 2})."""
    return PolicyFile(merge(demo_tree(), overrides), "test-policy")


def case(case_id: str, **kw: Any) -> dict[str, Any]:
    row = {
        "case_id": case_id,
        "hospital_id": "H001",
        "insurance_type": "employee",
        "total_cost": 1_000_000,
        "fund_paid": 700_000,
        "personal_copay": 200_000,
        "personal_selfpay": 100_000,
        "los_days": 7,
        "discharge_date": dt.date(2026, 3, 15),
        "settle_month": "2026-03",
        "department": "外科",
    }
    row.update(kw)
    return row


def grouped(case_id: str, group_code: str | None = "G1", **kw: Any) -> dict[str, Any]:
    row = {
        "case_id": case_id,
        "group_code": group_code,
        "group_type": "core",
        "base_score": Decimal("100"),
        "aux_coefficient": Decimal("1"),
        "match_step": "core",
        "reason": "test",
    }
    row.update(kw)
    return row


def group(code: str, **kw: Any) -> dict[str, Any]:
    row = {
        "group_code": code,
        "group_name": code,
        "group_type": "core",
        "diagnosis_key": "K35.8",
        "procedure_key": "",
        "procedure_match": "none",
        "score": Decimal("100"),
        "mean_cost_fen": 1_000_000,
        "mean_cost_tertiary_fen": 1_000_000,
        "mean_cost_secondary_fen": 800_000,
        "mean_cost_primary_fen": 500_000,
        "mean_cost_unrated_fen": None,
        "case_count": 100,
        "cv": 0.5,
        "score_per_day": None,
    }
    row.update(kw)
    return row


def hospital(hid: str, level: str | None = "tertiary", **kw: Any) -> dict[str, Any]:
    row = {
        "hospital_id": hid,
        "name": f"医院{hid}",
        "level": level,
        "county": "示范县",
        "community_id": None,
        "ownership": "public",
        "beds": 100,
        "bonus_coefficient": None,
    }
    row.update(kw)
    return row


def table(contract: ct.TableContract, rows: list[dict[str, Any]]) -> pa.Table:
    schema = contract.schema
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table(
        {n: pa.array(v, type=schema.field(n).type) for n, v in cols.items()},
        schema=pa.schema([pa.field(f.name, f.type) for f in schema]),
    )


def cases_table(rows: list[dict[str, Any]]) -> pa.Table:
    return table(ct.CASES, rows)


def grouped_table(rows: list[dict[str, Any]]) -> pa.Table:
    return table(ct.GROUPED, rows)


def directory_table(rows: list[dict[str, Any]]) -> pa.Table:
    return table(ct.DIRECTORY, rows)


def hospitals_table(rows: list[dict[str, Any]]) -> pa.Table:
    return table(ct.HOSPITALS, rows)


def reviews_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "case_id": pa.array([r["case_id"] for r in rows], pa.string()),
            "decision": pa.array([r["decision"] for r in rows], pa.string()),
            "reviewed_score": pa.array(
                [r.get("reviewed_score") for r in rows], pa.decimal128(18, 4)
            ),
        }
    )


def score_both(
    con: Any,
    cases: list[dict[str, Any]],
    grouped_rows: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    hospitals: list[dict[str, Any]],
    pf: PolicyFile,
    *,
    reviews: list[dict[str, Any]] | None = None,
    point_values: dict[str, Decimal] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score with the batch path and the single-case path; assert they agree; return rows."""
    from opendip.scoring import score_case, score_cases
    from opendip.scoring.explain import render
    from opendip.scoring.single import ByItemCase

    result = score_cases(
        con.create_table("cases", cases_table(cases), overwrite=True),
        con.create_table("grouped", grouped_table(grouped_rows), overwrite=True),
        con.create_table("directory", directory_table(groups), overwrite=True),
        con.create_table("hospitals", hospitals_table(hospitals), overwrite=True),
        pf,
        reviews=reviews_table(reviews) if reviews else None,
        point_values=point_values,
    )
    # The batch keeps the explanation's facts; the sentence is rendered on read.
    batch = {
        r["case_id"]: {**r, "explanation": render(r)}
        for r in result.contract().to_pyarrow().to_pylist()
    }
    by_item = {
        r["case_id"]: r["reason"]
        for r in result.not_dip.filter(result.not_dip.exemption.notnull()).to_pyarrow().to_pylist()
    }
    g_by = {g["case_id"]: g for g in grouped_rows}
    d_by = {d["group_code"]: d for d in groups}
    h_by = {h["hospital_id"]: h for h in hospitals}
    r_by = {r["case_id"]: r for r in (reviews or [])}
    for c in cases:
        g = g_by[c["case_id"]]
        if g["group_type"] == "unmatched":
            continue
        try:
            single = score_case(
                c,
                g,
                d_by.get(g["group_code"]),
                h_by[c["hospital_id"]],
                pf,
                review=r_by.get(c["case_id"]),
                point_value=(point_values or {}).get(c["insurance_type"]),
                directory_rows=d_by,
            )
        except ByItemCase as exc:
            assert by_item.get(c["case_id"]) == exc.reason, (exc.reason, by_item)
            continue
        assert c["case_id"] not in by_item
        assert single == batch[c["case_id"]], (single, batch[c["case_id"]])
    return batch


def score_single(
    case_row: dict[str, Any],
    grouped_row: dict[str, Any],
    groups: list[dict[str, Any]],
    hospitals: list[dict[str, Any]],
    pf: PolicyFile,
    *,
    review: dict[str, Any] | None = None,
    point_value: Decimal | None = None,
) -> dict[str, Any]:
    from opendip.scoring import score_case

    d_by = {d["group_code"]: d for d in groups}
    h_by = {h["hospital_id"]: h for h in hospitals}
    return score_case(
        case_row,
        grouped_row,
        d_by.get(grouped_row["group_code"]),
        h_by[case_row["hospital_id"]],
        pf,
        review=review,
        point_value=point_value,
        directory_rows=d_by,
    )
