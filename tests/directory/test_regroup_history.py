"""Grouping agrees with the directory build: re-grouping each history year of a generated
region with the directory built from it puts every case the build counted in the very group
the build counted it in (issue 14 §1). Differences are listed by case."""

from __future__ import annotations

from collections import Counter, defaultdict

import pyarrow.compute as pc
import pytest

from opendip.codes import demo_code_tables
from opendip.directory import build_directory
from opendip.engine import connect
from opendip.grouping import group_cases
from opendip.grouping.inputs import diagnosis_codes, procedure_types
from opendip.synth.region import generate_region

YEARS = (2023, 2024, 2025)


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    out = tmp_path_factory.mktemp("region")
    generate_region(out, cases_per_year=6000, years=YEARS, seed=11)
    return out


@pytest.mark.parametrize(
    "overrides",
    [{}, {"directory.core_threshold": {"method": "fixed", "min_cases": 5}}],
    ids=["demo-policy", "threshold-5"],
)
def test_regrouping_history_gives_the_build_s_groups(region, overrides) -> None:
    from tests.conftest import policy_with

    policy = policy_with({"directory.year_weights": {2023: 1, 2024: 2, 2025: 7}, **overrides})
    con = connect()
    codes = demo_code_tables()
    history = con.read_parquet([str(region / f"cases_{y}.parquet") for y in YEARS])
    built = build_directory(
        history,
        con.read_parquet(str(region / "hospitals.parquet")),
        procedure_types(con, codes),
        policy,
        diagnosis_codes=diagnosis_codes(con, codes),
    )
    assert built.metrics["assignment_settled"]
    counted = built.assignment.to_pyarrow()
    assert counted.num_rows > 0.9 * built.metrics["history_cases"]
    directory = con.create_table("built_directory", built.table, overwrite=True)
    differences = []
    for year in YEARS:
        cases = con.read_parquet(str(region / f"cases_{year}.parquet"))
        grouped = group_cases(
            cases, directory, procedure_types(con, codes), policy, None,
            diagnosis_codes(con, codes),
        ).to_pyarrow()  # fmt: skip
        # A duplicated list id (a QC error the generator injects) has several rows: compare
        # the groups of an id as a multiset.
        got: dict[str, Counter] = defaultdict(Counter)
        for cid, code in zip(
            grouped["case_id"].to_pylist(), grouped["group_code"].to_pylist(), strict=True
        ):
            got[cid][code] += 1
        built_year: dict[str, Counter] = defaultdict(Counter)
        year_rows = counted.filter(pc.equal(counted["year"], year))
        for cid, code in zip(
            year_rows["case_id"].to_pylist(), year_rows["group_code"].to_pylist(), strict=True
        ):
            built_year[cid][code] += 1
        for cid, codes_built in sorted(built_year.items()):
            if codes_built - got[cid]:
                differences.append((year, cid, dict(codes_built), dict(got[cid])))
    assert differences == [], (
        f"{len(differences)} 例不一致（年度, 病例, 构建, 入组）: {differences[:20]}"
    )


def test_batch_equals_single_case_on_a_generated_region(region) -> None:
    """Every case of a generated year: the batch expression (arg_min tie-break, list
    matching) gives exactly the single-case answer, the reference implementation."""
    import pyarrow.parquet as pq

    from opendip.grouping import GroupingIndex, group_case
    from tests.conftest import policy_with

    policy = policy_with({"directory.year_weights": {2023: 1, 2024: 2, 2025: 7}})
    con = connect()
    codes = demo_code_tables()
    built = build_directory(
        con.read_parquet([str(region / f"cases_{y}.parquet") for y in YEARS]),
        con.read_parquet(str(region / "hospitals.parquet")),
        procedure_types(con, codes),
        policy,
        diagnosis_codes=diagnosis_codes(con, codes),
    )
    directory = con.create_table("built_directory_2", built.table, overwrite=True)
    path = region / "cases_2025.parquet"
    grouped = group_cases(
        con.read_parquet(str(path)), directory, procedure_types(con, codes), policy, None,
        diagnosis_codes(con, codes),
    ).to_pyarrow()  # fmt: skip
    index = GroupingIndex.build(built.table, policy, codes)
    expected = sorted(
        (group_case(c, index).as_row() for c in pq.read_table(path).to_pylist()),
        key=lambda r: (r["case_id"], r["group_code"] or "", r["reason"]),
    )
    got = sorted(
        grouped.to_pylist(), key=lambda r: (r["case_id"], r["group_code"] or "", r["reason"])
    )
    assert len(got) == len(expected) == pq.read_metadata(path).num_rows
    diff = [(a, b) for a, b in zip(got, expected, strict=True) if a != b]
    assert diff == [], f"{len(diff)} 例批量与单病例结果不同：{diff[:5]}"
