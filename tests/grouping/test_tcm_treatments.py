"""Worked example for `grouping.tcm_treatments_counted` (docs/policy.md): the demo policy lists
针刺 99.92 as the TCM treatment of 腰椎间盘突出症 (scoring.tcm_advantage, ZY-M51). A conservative
stay of M51.900 treated with 99.9200 only:

- not counted (default): the key is "M51.9" with no procedure → the conservative core row
  M51.9:保守 (score 30), whose score the TCM rule then adjusts;
- counted: 99.9200 is a therapeutic procedure → the core row M51.9:99.9200 (score 60).

A stay with 99.9200 and a listed surgery 80.5100 keeps the surgery either way (only the TCM
code leaves the key). Batch and single case agree."""

from __future__ import annotations

import pyarrow as pa
import pytest

from opendip.codes import demo_code_tables
from opendip.contract import DIRECTORY
from opendip.grouping import GroupingIndex, group_case
from tests.conftest import policy_with
from tests.grouping.test_grouping import batch as _batch
from tests.grouping.test_grouping import case, row

DIR = DIRECTORY.conform(
    pa.Table.from_pylist(
        [
            row("M51.9:保守", "core", "M51.9", "", "none", "30", 3000),
            row("M51.9:99.9200", "core", "M51.9", "99.9200", "all", "60", 6000),
            row("M51.9:80.5100", "core", "M51.9", "80.5100", "all", "150", 15000),
        ]
    )
)


def _both(c: dict, policy) -> tuple[str, str, list[str]]:
    import tests.grouping.test_grouping as tg

    saved = tg.DIR
    tg.DIR = DIR
    try:
        b = _batch([c], policy)[c["case_id"]]
    finally:
        tg.DIR = saved
    s = group_case(c, GroupingIndex.build(DIR, policy, demo_code_tables()))
    assert b["group_code"] == s.group_code  # single case = batch
    return b["group_code"], b["group_type"], s.explanation


@pytest.mark.parametrize(
    ("counted", "procs", "expected"),
    [
        (False, ["99.9200"], "M51.9:保守"),
        (True, ["99.9200"], "M51.9:99.9200"),
        (False, ["80.5100", "99.9200"], "M51.9:80.5100"),
        (True, ["80.5100"], "M51.9:80.5100"),
    ],
)
def test_tcm_treatment_and_the_conservative_group(counted, procs, expected) -> None:
    policy = policy_with({"grouping.tcm_treatments_counted": counted})
    code, gtype, explanation = _both(case("m", "M51.900", procs, cost=3000), policy)
    assert (code, gtype) == (expected, "core")
    said = any("属政策所列中医/民族医治疗" in line for line in explanation)
    assert said == (not counted and "99.9200" in procs)


def test_default_is_not_counted_and_the_list_is_the_tcm_rules() -> None:
    policy = policy_with()
    assert policy.grouping.tcm_treatments_counted is False
    assert policy.tcm_treatment_prefixes() == ["93.54", "99.92"]
    assert policy.grouping_ignored_prefixes() == ["99.1", "89.0", "93.54", "99.92"]
    counted = policy_with({"grouping.tcm_treatments_counted": True})
    assert counted.grouping_ignored_prefixes() == ["99.1", "89.0"]
