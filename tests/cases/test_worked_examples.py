"""Worked examples an insurance officer can read and add to (tests/cases/*.yaml).

Each file: a policy excerpt (overrides on tests/scoring/base-policy.yaml), groups, hospitals,
point values and cases with the expected deviation, scores and amounts (yuan). Every case is
checked on the single-case path, and each file once through the batch path (same answers).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "scoring"))

import builders as b

from opendip.policy.load import _DecimalLoader

HERE = Path(__file__).parent
FILES = sorted(HERE.glob("*.yaml"))


def _fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def load(path: Path) -> dict[str, Any]:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)
    groups = []
    for g in doc["groups"]:
        row = {k: v for k, v in g.items() if not k.endswith("_yuan")}
        for k, v in g.items():
            if k.endswith("_yuan"):
                row[k.replace("_yuan", "_fen")] = _fen(v)
        row.setdefault("mean_cost_tertiary_fen", None)
        row.setdefault("mean_cost_secondary_fen", None)
        row.setdefault("mean_cost_primary_fen", None)
        groups.append(b.group(row.pop("group_code"), **row))
    cases = []
    for c in doc["cases"]:
        kw = {}
        for k, v in c["case"].items():
            kw[k.replace("_yuan", "") if k.endswith("_yuan") else k] = (
                _fen(v) if k.endswith("_yuan") else v
            )
        case_id = kw.pop("case_id")
        grouped = dict(c["grouped"])
        cases.append(
            {
                "name": c["name"],
                "case": b.case(case_id, **kw),
                "grouped": b.grouped(case_id, **grouped),
                "review": {"case_id": case_id, **c["review"]} if c.get("review") else None,
                "expect": c["expect"],
            }
        )
    return {
        "title": doc["title"],
        "policy": b.policy(**(doc.get("policy") or {})),
        "groups": groups,
        "hospitals": [
            b.hospital(
                h["hospital_id"], h.get("level"), bonus_coefficient=h.get("bonus_coefficient")
            )
            for h in doc["hospitals"]
        ],
        "point_values": {k: Decimal(str(v)) for k, v in doc["point_values"].items()},
        "cases": cases,
    }


def check(row: dict[str, Any], expect: dict[str, Any]) -> None:
    for key, value in expect.items():
        if key in ("tcm_group", "new_tech"):
            assert row[key] == value, key
        elif key == "explanation":  # the Chinese sentence rendered from the row's facts
            from opendip.scoring.explain import render

            assert render(row) == value
        elif key == "mean_cost_fen":  # the group mean the case was compared with (or none)
            assert row[key] == value, key
        elif key.endswith("_yuan"):
            assert row[key.replace("_yuan", "_fen")] == _fen(value), key
        elif key == "deviation":
            assert row[key] == value
        else:
            assert row[key] == Decimal(str(value)), key


EXAMPLES = [(f, c) for f in FILES for c in load(f)["cases"]]


@pytest.mark.parametrize(
    "path,example", EXAMPLES, ids=[f"{p.stem}:{c['case']['case_id']}" for p, c in EXAMPLES]
)
def test_example_single_case(path, example):
    from opendip.scoring.single import ByItemCase

    doc = load(path)
    if example["expect"].get("by_item"):  # the new technology's code, paid by item
        with pytest.raises(ByItemCase, match="按项目付费") as exc:
            b.score_single(
                example["case"], example["grouped"], doc["groups"], doc["hospitals"], doc["policy"]
            )
        assert exc.value.code == example["expect"]["by_item"]
        return
    row = b.score_single(
        example["case"],
        example["grouped"],
        doc["groups"],
        doc["hospitals"],
        doc["policy"],
        review=example["review"],
        point_value=doc["point_values"][example["case"]["insurance_type"]],
    )
    check(row, example["expect"])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_file_batch_matches(path):
    from opendip.engine import connect

    doc = load(path)
    rows = b.score_both(
        connect(),
        [c["case"] for c in doc["cases"]],
        [c["grouped"] for c in doc["cases"]],
        doc["groups"],
        doc["hospitals"],
        doc["policy"],
        reviews=[c["review"] for c in doc["cases"] if c["review"]] or None,
        point_values=doc["point_values"],
    )
    for c in doc["cases"]:
        if c["expect"].get("by_item"):  # settled by item: in not_dip (score_both checks why)
            assert c["case"]["case_id"] not in rows
            continue
        check(rows[c["case"]["case_id"]], c["expect"])
