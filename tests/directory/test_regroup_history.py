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
