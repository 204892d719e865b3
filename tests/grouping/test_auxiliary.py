"""Auxiliary directories as data (CCI-style comorbidity with exclusions, severity, tumour,
age): hand-computed coefficients, per-code impact in the explanation, batch = single case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendip.codes import demo_code_tables
from opendip.contract import CASES
from opendip.directory.auxiliary import AuxiliaryError, load_auxiliary
from opendip.engine import connect, table_from_arrow
from opendip.grouping import GroupingIndex, group_case, group_cases
from tests.grouping.test_grouping import DIR, POLICY, case

AUX = load_auxiliary()  # the shipped demo file


def _batch(cases: list[dict]) -> dict[str, dict]:
    con = connect()
    t = table_from_arrow(con, CASES.conform(pa.Table.from_pylist(cases)), "cases")
    d = table_from_arrow(con, DIR, "directory")
    codes = demo_code_tables()
    pt = table_from_arrow(con, codes.procedures.select(["code", "procedure_type"]), "pt")
    dc = table_from_arrow(con, codes.diagnoses.select(["code", "valid_as_main"]), "dc")
    out = group_cases(t, d, pt, POLICY, None, dc, AUX).to_pyarrow().to_pylist()
    return {r["case_id"]: r for r in out}


INDEX = GroupingIndex.build(DIR, POLICY, demo_code_tables(), AUX)


def test_hand_computed_coefficient_and_per_code_impact() -> None:
    c = case(
        "a", "K35.800", ["47.0100"], age=82, discharge_method="5", icu_days=4,
        other_diagnoses=["E11.900", "N18.900", "C78.000", "K74.600"],
    )  # fmt: skip
    result = group_case(c, INDEX)
    # CCI: E11.9 +1, N18 +2, C78 +6, K74 +3 = 12 → 重度 ×1.15; death ×1.10 beats ICU ≥3 days
    # ×1.10 (equal; one applies); metastasis ×1.10; 80+ ×1.06 (beats 65+ ×1.03)
    # 1.15 × 1.10 × 1.10 × 1.06 = 1.474990 → 1.4750
    assert result.group_code == "K35.8:47.0100" and result.aux_coefficient == Decimal("1.4750")
    lines = [x for x in result.explanation if x.startswith("辅助目录")]
    assert (
        "辅助目录（示范辅助目录（CCI 合并症、疾病严重程度、肿瘤治疗、年龄））：合并症 E11.900（糖尿病（无并发症））：+1 分"
        in lines
    )
    assert any("N18.900（中重度肾病）：+2 分" in x for x in lines)
    assert any("合并症评分 12 → 重度合并症 ×1.15" in x for x in lines)
    assert any("肿瘤：肿瘤转移 ×1.1" in x for x in lines)
    assert any("年龄：80 岁及以上 ×1.06" in x for x in lines)
    assert lines[-1] == "辅助目录系数 1.4750"
    assert _batch([c])["a"]["aux_coefficient"] == Decimal("1.4750")


def test_exclusion_with_the_main_diagnosis_and_non_core_groups() -> None:
    # main E11 excludes the diabetes conditions: E11.900 does not count; I50 counts 1 →
    # 轻度 ×1.03; 65+ ×1.03 → 1.0609
    c = case("b", "K35.800", [], age=70, other_diagnoses=["I50.900"])
    assert group_case(c, INDEX).aux_coefficient == Decimal("1.0609")
    diabetic = case("c", "E11.900", [], age=40, other_diagnoses=["E11.200"])
    coefficient, lines = AUX.apply(diabetic)  # (E11 has no core group in this directory)
    assert lines == ["合并症 E11.200（糖尿病伴并发症）：与主要诊断 E11.900 同类，不计"]
    assert coefficient == Decimal("1.0000")
    # comprehensive and special groups keep coefficient 1
    comp = group_case(case("d", "J18.000", [], age=85, discharge_method="5"), INDEX)
    assert comp.group_type != "core" and comp.aux_coefficient in (None, Decimal("1.0000"))


@settings(max_examples=5, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["K35.800", "K80.100", "K81.000", "J18.900", "C78.000", "E11.900"]),
            st.lists(st.sampled_from(["47.0100", "51.2300", "96.7200", "99.2500", "92.2400"]), max_size=3),
            st.integers(0, 95),
            st.sampled_from([None, 0, 20, 300]),
            st.lists(st.sampled_from(["E11.900", "E11.200", "I50.900", "C78.000", "N18.900",
                                      "K74.600", "Z51.100", "Q99.999x999"]), max_size=4),
            st.sampled_from([None, "1", "4", "5"]),
            st.sampled_from([None, 0, 2, 5]),
        ),
        min_size=1,
        max_size=60,
    )
)  # fmt: skip
def test_batch_equals_single_case(specs: list) -> None:
    cases = [
        case(str(i), dx, procs, age=age, age_days=days, other_diagnoses=others,
             discharge_method=dm, icu_days=icu)
        for i, (dx, procs, age, days, others, dm, icu) in enumerate(specs)
    ]  # fmt: skip
    got = _batch(cases)
    for c in cases:
        assert got[c["case_id"]] == group_case(c, INDEX).as_row()


def test_bad_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "aux.yaml"
    path.write_text("version: x\nname: y\nseverity:\n  - {label: 空, coefficient: 1.1}\n",
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(AuxiliaryError, match="没有任何匹配条件"):
        load_auxiliary(path)


def test_policy_names_the_file_and_every_grouper_uses_it(tmp_path: Path) -> None:
    from tests.conftest import policy_with

    policy = policy_with({"directory.auxiliary.file": "demo"})
    index = GroupingIndex.build(DIR, policy, demo_code_tables())  # no explicit file
    c = case("a", "K35.800", ["47.0100"], age=82, discharge_method="5", icu_days=4,
             other_diagnoses=["E11.900", "N18.900", "C78.000", "K74.600"])  # fmt: skip
    assert group_case(c, index).aux_coefficient == Decimal("1.4750")
    con = connect()
    codes = demo_code_tables()
    out = group_cases(
        table_from_arrow(con, CASES.conform(pa.Table.from_pylist([c])), "cases"),
        table_from_arrow(con, DIR, "directory"),
        table_from_arrow(con, codes.procedures.select(["code", "procedure_type"]), "pt"),
        policy,
    ).to_pyarrow()
    assert out["aux_coefficient"].to_pylist() == [Decimal("1.4750")]
    # a relative path in a policy file is relative to that file
    from opendip.policy import PolicyFile, demo_policy_path

    text = demo_policy_path().read_text(encoding="utf-8")
    (tmp_path / "aux.yaml").write_text(
        Path(load_auxiliary.__module__ and __file__).parents[2].joinpath(
            "src/opendip/data/directory/auxiliary-demo.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )  # fmt: skip
    text = text.replace("  auxiliary:\n", "  auxiliary:\n    file: aux.yaml\n", 1)
    (tmp_path / "policy.yaml").write_text(text, encoding="utf-8")
    loaded = PolicyFile.read(tmp_path / "policy.yaml").at()
    assert loaded.directory.auxiliary.file == str(tmp_path.resolve() / "aux.yaml")
