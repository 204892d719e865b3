from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.region import make_region

#: The variant of the issue's acceptance test: one hospital-level coefficient and one threshold.
COEF_AND_THRESHOLD = """\
name: 二级系数上调与高倍率界值放宽
description: 二级医院系数 0.88→0.92；分值≥100 病种高倍率界值 2→2.5
policy:
  scoring.hospital_coefficient.levels.secondary: 0.92
  scoring:
    deviation_bands:
      - {score_max: 100, high_multiple: 3, low_multiple: 0.5}
      - {score_min: 100, high_multiple: 2.5, low_multiple: 0.5}
"""


@pytest.fixture(scope="session")
def scenario_region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_region(tmp_path_factory.mktemp("scenario-region"))


@pytest.fixture(scope="session")
def scenario_out(scenario_region: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from opendip.scenario import Variant
    from opendip.scenario.run import run_scenario

    work = tmp_path_factory.mktemp("scenario")
    v1 = work / "v1.yaml"
    v1.write_text(COEF_AND_THRESHOLD, encoding="utf-8")
    # A directory change: the largest core group re-scored +10 % (cases are grouped again).
    import duckdb

    code, score = (
        duckdb.connect()
        .execute(
            f"""SELECT group_code, score FROM read_parquet('{scenario_region / "directory.parquet"}')
            WHERE group_type = 'core' ORDER BY case_count DESC, group_code LIMIT 1"""
        )
        .fetchone()
    )
    v2 = work / "v2.yaml"
    v2.write_text(
        f"name: 病种分值调整\ndirectory_scores: {{{code}: {score * 11 / 10:.4f}}}\n",
        encoding="utf-8",
    )
    out = work / "out"
    run_scenario(scenario_region / "settlement", [Variant.read(v1), Variant.read(v2)], out)
    return out
