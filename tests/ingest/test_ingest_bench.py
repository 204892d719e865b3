from pathlib import Path

import pyarrow.parquet as pq

from opendip.bench import BenchContext
from opendip.contract import CASES
from opendip.ingest.bench import run


def test_bench_stage_builds_its_own_input_when_alone(tmp_path: Path) -> None:
    ctx = BenchContext(workdir=tmp_path, n_cases=300)
    result = run(ctx)
    assert result.rows == 300
    imported = pq.read_table(ctx.artifacts["imported_cases"])
    assert imported.schema == CASES.schema
    path = tmp_path / "imported" / "quarantine_settlement_lists.csv"
    quarantine = path.read_text(encoding="utf-8-sig")
    assert imported.num_rows + len(quarantine.splitlines()) - 1 == 300
    # the upload is the multi-record structure, one GB18030 CSV per record type
    upload = tmp_path / "upload" / "settlement_lists"
    assert sorted(p.name for p in upload.iterdir()) == [
        "diagnoses.csv", "fees.csv", "funds.csv", "icu.csv", "procedures.csv",
        "settlement_lists.csv",
    ]  # fmt: skip
    header = (upload / "diagnoses.csv").read_bytes().decode("gb18030").splitlines()[0]
    assert header.startswith("SETL_ID,DIAG_TYPE,MAINDIAG_FLAG,DIAG_CODE")
    assert "接收" in result.note and "隔离" in result.note and "子记录质控问题" in result.note


def test_bench_stage_reads_the_synth_artifact(tmp_path: Path) -> None:
    first = BenchContext(workdir=tmp_path / "a", n_cases=200)
    run(first)
    ctx = BenchContext(workdir=tmp_path / "b", n_cases=0)
    ctx.artifacts["cases"] = first.artifacts["imported_cases"]
    result = run(ctx)
    assert result.rows == pq.read_table(first.artifacts["imported_cases"]).num_rows


def test_demo_settles_only_the_accepted_rows(tmp_path: Path) -> None:
    """On a generated region the accepted rows become the region's current-year file: rows
    quarantined at import are neither grouped nor settled (input = accepted + quarantined)."""
    import pyarrow.compute as pc

    from opendip.bench import available_stages

    ctx = BenchContext(workdir=tmp_path, n_cases=600)
    for name, _label, fn in available_stages():
        fn(ctx)
        if name == "settlement":
            break
    generated = pq.read_table(ctx.artifacts["generated_cases"])
    accepted = pq.read_table(ctx.artifacts["imported_cases"])
    quarantined = len(
        (tmp_path / "imported" / "quarantine_settlement_lists.csv")
        .read_text(encoding="utf-8-sig")
        .splitlines()
    )
    assert quarantined - 1 > 0  # the generated year has rows import refuses
    assert generated.num_rows == accepted.num_rows + quarantined - 1
    region = pq.read_table(tmp_path / "cases_2026.parquet")
    assert region.equals(accepted)
    grouped = pq.read_table(ctx.artifacts["grouped"])
    assert grouped.num_rows == accepted.num_rows
    settled = pq.read_table(tmp_path / "settlement" / "cases.parquet")
    not_dip = pq.read_table(tmp_path / "settlement" / "not_dip.parquet")
    assert settled.num_rows + not_dip.num_rows == accepted.num_rows
    # The duplicated settlement lists import refused leave each case id once.
    assert pc.count_distinct(region["case_id"]).as_py() == region.num_rows
