"""Official code tables in the national layout, dated versions side by side, and cases checked
against the version in force on their discharge date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import CodeTableError, load_code_tables
from opendip.codes.tables import LoadReport
from opendip.codes.versions import (
    CodeVersion,
    CodeVersions,
    apply_grey_list,
    check_cases,
    load_grey_list,
    load_mapping_national,
)
from opendip.contract import CASES

DIAG_HEADER = (
    "章,章代码范围,章的名称,节代码范围,节名称,类目代码,类目名称,亚目代码,亚目名称,诊断代码,诊断名称"
)
PROC_HEADER = "章,章代码范围,章名称,类目代码,类目名称,亚目代码,亚目名称,细目代码,细目名称,手术操作代码,手术操作名称"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _diag_row(code: str, name: str) -> str:
    return f"11,K00-K93,消化系统疾病,K80-K87,胆囊、胆道和胰疾病,{code[:3]},类目,{code[:5]},亚目,{code},{name}"


def _national(tmp_path: Path, name: str, diagnoses: list[tuple[str, str]]) -> tuple[Path, Path]:
    diag = _write(
        tmp_path / f"{name}_d.csv",
        "\n".join([DIAG_HEADER, *(_diag_row(c, n) for c, n in diagnoses)]) + "\n",
    )
    proc = _write(
        tmp_path / f"{name}_p.csv",
        PROC_HEADER + "\n"
        "10,42-54,消化系统手术,51,胆囊和胆道手术,51.2,胆囊切除术,51.23,腹腔镜胆囊切除术,51.2300,腹腔镜下胆囊切除术\n"
        "10,42-54,消化系统手术,47,阑尾手术,47.0,阑尾切除术,47.01,腹腔镜阑尾切除术,47.0100,腹腔镜下阑尾切除术\n",
    )
    return diag, proc


def test_national_layout_loads_with_hierarchy_checked(tmp_path: Path) -> None:
    diag, proc = _national(tmp_path, "v1", [("K80.100", "胆囊结石伴有其他胆囊炎")])
    attributes = _write(tmp_path / "attr.csv", "手术操作代码,手术操作类别\n51.2300,手术\n")
    report = LoadReport()
    tables = load_code_tables(diag, proc, attributes, report)
    assert tables.diagnosis("K80.100")["subcategory"] == "K80.1"  # type: ignore[index]
    assert tables.procedure("51.2300")["procedure_type"] == "surgery"  # type: ignore[index]
    assert report.types_from_attributes == 1 and report.types_inferred == ["47.0100"]
    bad = _write(
        tmp_path / "bad.csv",
        DIAG_HEADER + "\n11,K00-K93,消化系统疾病,K80-K87,节,K81,类目,K80.1,亚目,K80.100,名称\n",
    )
    with pytest.raises(CodeTableError, match=r"类目代码 K81 与代码 K80\.100 不符"):
        load_code_tables(bad, proc)


def test_retired_rows_of_the_feed_are_left_out_and_counted(tmp_path: Path) -> None:
    diag = _write(
        tmp_path / "feed.csv",
        "DIAG_CODE,DIAG_NAME,VALI_FLAG\nK80.100,胆囊结石伴有其他胆囊炎,1\nK80.101,旧代码,0\n",
    )
    _, proc = _national(tmp_path, "x", [])
    report = LoadReport()
    tables = load_code_tables(diag, proc, None, report)
    assert tables.diagnoses["code"].to_pylist() == ["K80.100"]
    assert report.retired == {"diagnosis": ["K80.101"], "procedure": []}


def test_mapping_with_grey_codes_and_grey_list(tmp_path: Path) -> None:
    mapping = _write(
        tmp_path / "map.csv",
        "国临版代码,国临版名称,医保版代码,医保版名称\n"
        "K80.100x002,胆囊结石伴慢性胆囊炎,K80.100,胆囊结石伴有其他胆囊炎\n"
        "R68.800x099,某症状性诊断,灰码,灰码\n",
    )
    rows, grey = load_mapping_national(mapping)
    assert rows.to_pylist() == [
        {"kind": "diagnosis", "clinical_code": "K80.100x002", "insurance_code": "K80.100"}
    ]
    assert grey.to_pylist() == [
        {"kind": "diagnosis", "code": "R68.800x099", "restriction": "grey", "value": None}
    ]
    listed = load_grey_list(
        _write(
            tmp_path / "grey.csv",
            "代码,限制,值\nK80.100,不可作主要诊断,\nK80.200,仅女性,\nK80.200,年龄下限(天),365\n",
        )
    )
    diag, proc = _national(tmp_path, "g", [("K80.100", "a"), ("K80.200", "b")])
    tables = apply_grey_list(load_code_tables(diag, proc), listed)
    assert tables.diagnosis("K80.100")["valid_as_main"] is False  # type: ignore[index]
    row = tables.diagnosis("K80.200")
    assert row["sex_restriction"] == "2" and row["age_min_days"] == 365  # type: ignore[index]
    with pytest.raises(CodeTableError, match="无效值 '也许'"):
        load_grey_list(_write(tmp_path / "g2.csv", "代码,限制\nK80.100,也许\n"))


def _cases(rows: list[dict]) -> pa.Table:
    base = {"hospital_id": "H1", "patient_id": "P", "insurance_type": "employee", "sex": "1",
            "age": 50, "admit_date": dt.date(2025, 1, 1), "total_cost": 100,
            "settle_month": "2025-01", "other_procedures": [], "main_procedure": None}  # fmt: skip
    return CASES.conform(pa.Table.from_pylist([{**base, **r} for r in rows]))


def test_two_versions_coexist_and_a_case_is_checked_against_the_one_in_force(
    tmp_path: Path,
) -> None:
    # 2.0 (from 2024-01-01) knows K80.100 and K80.101; 2.1 (from 2025-07-01) retires K80.101,
    # adds K80.102 and maps the clinical code K80.100x002.
    d1, p1 = _national(tmp_path, "v20", [("K80.100", "a"), ("K80.101", "b")])
    d2, p2 = _national(tmp_path, "v21", [("K80.100", "a"), ("K80.102", "c")])
    mapping = pa.table(
        {"kind": ["diagnosis"], "clinical_code": ["K80.100x002"], "insurance_code": ["K80.100"]}
    )
    versions = CodeVersions(
        [
            CodeVersion("2.1", dt.date(2025, 7, 1), load_code_tables(d2, p2), mapping),
            CodeVersion("2.0", dt.date(2024, 1, 1), load_code_tables(d1, p1)),
        ]
    )
    assert versions.in_force(dt.date(2025, 6, 30)).version == "2.0"  # type: ignore[union-attr]
    assert versions.in_force(dt.date(2025, 7, 1)).version == "2.1"  # type: ignore[union-attr]
    assert versions.in_force(dt.date(2023, 12, 31)) is None
    versions.write(tmp_path / "codes")
    again = CodeVersions.read(tmp_path / "codes")
    assert [v.version for v in again.versions] == ["2.0", "2.1"]
    assert again.versions[1].mapping is not None
    cases = _cases(
        [
            # K80.101 is fine in June (2.0) and retired in July (2.1)
            {"case_id": "A", "discharge_date": dt.date(2025, 6, 30), "main_diagnosis": "K80.101",
             "other_diagnoses": ["K80.102"]},
            {"case_id": "B", "discharge_date": dt.date(2025, 7, 1), "main_diagnosis": "K80.101",
             "other_diagnoses": ["K80.102"]},
            # the clinical code maps under 2.1 only
            {"case_id": "C", "discharge_date": dt.date(2025, 8, 1), "main_diagnosis": "K80.100x002",
             "other_diagnoses": ["K99.999"]},
            {"case_id": "D", "discharge_date": dt.date(2025, 1, 1), "main_diagnosis": "K80.100x002",
             "other_diagnoses": [], "main_procedure": "99.9999"},
        ]
    )  # fmt: skip
    findings, report = check_cases(cases, again)
    got = sorted(
        zip(findings["case_id"].to_pylist(), findings["version"].to_pylist(),
            findings["code"].to_pylist(), findings["problem"].to_pylist(), strict=True)
    )  # fmt: skip
    assert got == [
        ("A", "2.0", "K80.102", "retired"),  # 2.1's new code, not yet in force in June
        ("B", "2.1", "K80.101", "retired"),
        ("C", "2.1", "K99.999", "unmapped"),
        ("D", "2.0", "99.9999", "unknown"),
        ("D", "2.0", "K80.100x002", "unknown"),  # no mapping in 2.0
    ]
    counts = {(r["version"], r["code"]): (r["occurrences"], r["cases"]) for r in report.to_pylist()}
    assert counts[("2.0", "K80.102")] == (1, 1) and counts[("2.1", "K80.101")] == (1, 1)


def test_versions_refuse_same_date_or_name() -> None:
    from opendip.codes import demo_code_tables

    t = demo_code_tables()
    with pytest.raises(CodeTableError, match="生效日期相同"):
        CodeVersions(
            [CodeVersion("a", dt.date(2025, 1, 1), t), CodeVersion("b", dt.date(2025, 1, 1), t)]
        )
    with pytest.raises(CodeTableError, match="版本号重复"):
        CodeVersions(
            [CodeVersion("a", dt.date(2025, 1, 1), t), CodeVersion("a", dt.date(2026, 1, 1), t)]
        )


def test_cli_load_versions_and_check(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    d1, p1 = _national(tmp_path, "v20", [("K80.100", "a"), ("K80.101", "b")])
    d2, p2 = _national(tmp_path, "v21", [("K80.100", "a")])
    out = tmp_path / "codes"
    runner = CliRunner()
    for d, p, v, day in ((d1, p1, "2.0", "2024-01-01"), (d2, p2, "2.1", "2025-07-01")):
        run = runner.invoke(
            app, ["codes", "load", str(d), str(p), "--out", str(out), "--version", v,
                  "--effective", day],
        )  # fmt: skip
        assert run.exit_code == 0, run.output
        assert "按编码位置推定" in run.output
    assert (out / "diagnoses.parquet").exists()  # the latest version at the top level
    cases = _cases(
        [{"case_id": "B", "discharge_date": dt.date(2025, 7, 1), "main_diagnosis": "K80.101",
          "other_diagnoses": []}]
    )  # fmt: skip
    pq.write_table(cases, tmp_path / "cases.parquet")
    run = runner.invoke(
        app, ["codes", "check", str(tmp_path / "cases.parquet"), "--versions", str(out),
              "--out", str(tmp_path / "report.csv")],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "已停用" in run.output and "K80.101" in run.output
    text = (tmp_path / "report.csv").read_text(encoding="utf-8-sig")
    assert "2.1" in text and "K80.101" in text
    run = runner.invoke(
        app, ["codes", "load", str(d1), str(p1), "--out", str(out), "--version", "x"]
    )
    assert run.exit_code != 0


def test_cli_grey_procedures_give_the_ignore_list(tmp_path: Path) -> None:
    d, p = _national(tmp_path, "g", [("K80.100", "a")])
    grey = _write(
        tmp_path / "grey.csv",
        "代码,类型,限制\n51.2300,手术操作,灰码\nK80.100,诊断,不可作主要诊断\n",
    )
    out = tmp_path / "codes"
    run = CliRunner().invoke(
        app, ["codes", "load", str(d), str(p), "--out", str(out), "--grey", str(grey)]
    )
    assert run.exit_code == 0, run.output
    assert "灰码手术操作" in run.output
    text = (out / "grey_procedures.yaml").read_text(encoding="utf-8")
    assert "ignore_procedure_prefixes" in text and "51.2300" in text
    import pyarrow.parquet as pq

    diagnoses = pq.read_table(out / "diagnoses.parquet").to_pylist()
    assert diagnoses[0]["valid_as_main"] is False
