"""病案首页 exports → settlement lists: the mapping, the fields that cannot be derived, and
the import through the ordinary multi-record path."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import demo_code_tables
from opendip.ingest.frontpage import convert_front_pages, map_clinical_codes, write_converted
from opendip.ingest.settlement import import_settlement_lists

#: national-formats.md §5.4 plus a newborn (HQMS age in months, date as 2024年3月9日) and a
#: self-paying case without a main diagnosis code ('-' = empty).
EXPORT = (
    "BAH,ZYCS,XB,CSRQ,NL,BZYZS_NL,XSECSTZ,RYTJ,RYSJ,RYSJS,CYSJ,CYSJS,SJZYTS,YLFKFS,ZYZD,JBDM,"
    "RYBQ,QTZD1,JBDM1,RYBQ1,QTZD2,JBDM2,RYBQ2,SSJCZBM1,SSJCZMC1,SSJCZRQ1,MZFS1,SZ1,SSJCZBM2,"
    "SSJCZRQ2,LYFS,SFZZYJH,RYQ_T,RYQ_XS,RYQ_F,ZFY\n"
    "A2024000123,1,1,1968-07-02,55,,,2,2024-03-05,9,2024-03-11,10,6,1,胆囊结石伴慢性胆囊炎,"
    "K80.100x002,1,2型糖尿病,E11.900,1,,,,51.2300,腹腔镜下胆囊切除术,2024-03-06,全身麻醉,张医生,"
    ",,1,1,-,-,-,7455.80\n"
    "A2024000124,2,2,2024-03-01,0,0 5/30,2450,1,2024-03-06,8,2024年3月9日,11,3,2,新生儿黄疸,"
    "P59.900,1,,,,,,,,,,,,,,1,1,,,,1200.00\n"
    "A2024000125,1,1,1950-01-01,74,,,2,20240301,,20240310,,9,7,,-,,肺炎,J18.900,1,,,,,,,,,,,5,1,"
    "0,2,30,5000\n"
)
MAPPING = (
    "国临版代码,国临版名称,医保版代码,医保版名称\n"
    "K80.100x002,胆囊结石伴慢性胆囊炎,K80.100,胆囊结石伴有其他胆囊炎\n"
)


def _export(tmp_path: Path, encoding: str = "utf-8") -> Path:
    path = tmp_path / "首页.csv"
    path.write_bytes(EXPORT.encode(encoding))
    return path


def test_conversion_maps_the_front_page_columns(tmp_path: Path) -> None:
    conversion = convert_front_pages([_export(tmp_path, "gb18030")], hospital_id="H4101")
    header = conversion.records["settlement_lists"].to_pylist()
    first, newborn, third = header
    assert first["SETL_ID"] == "A2024000123-1" and first["MEDCASNO"] == "A2024000123"
    assert (
        first["ADM_TIME"] == "2024-03-05 09:00:00" and first["DSCG_TIME"] == "2024-03-11 10:00:00"
    )
    assert first["INSUTYPE"] == "310" and first["MEDFEE_SUMAMT"] == "7455.80"
    assert first["FIXMEDINS_CODE"] == "H4101" and first["PSN_NO"] == "A2024000123"
    assert newborn["NWB_AGE"] == "5" and newborn["AGE"] == "0"  # days from CSRQ and RYSJ
    assert newborn["NWB_BIR_WT"] == "2450" and newborn["DSCG_TIME"] == "2024-03-09 11:00:00"
    assert third["INSUTYPE"] is None  # 7 全自费: not an insured case
    assert third["PWCRY_BFADM_COMA_DURA"] == "0/2/30" and third["PWCRY_AFADM_COMA_DURA"] is None
    assert first["PWCRY_BFADM_COMA_DURA"] is None  # "-" is empty
    dx = conversion.records["diagnoses"].to_pylist()
    assert [(d["SETL_ID"], d["DIAG_CODE"], d["MAINDIAG_FLAG"]) for d in dx] == [
        ("A2024000123-1", "K80.100x002", "1"),
        ("A2024000123-1", "E11.900", "0"),
        ("A2024000124-2", "P59.900", "1"),
        ("A2024000125-1", "J18.900", "0"),
    ]
    (op,) = conversion.records["procedures"].to_pylist()
    assert op["OPRN_OPRT_TYPE"] == "1" and op["ANST_WAY"] == "全身麻醉"
    assert op["OPER_DR_NAME"] == "张医生" and op["OPRN_OPRT_DATE"] == "2024-03-06"
    fields = {r["field"]: r["cases"] for r in conversion.underivable.to_pylist()}
    assert fields["MED_CHRGITM"] == 3 and fields["FUND_PAY_TYPE"] == 3
    assert fields["INSUTYPE"] == 1 and fields["DIAG_CODE"] == 1
    assert "FIXMEDINS_CODE" not in fields  # given with --hospital-id
    assert "FIXMEDINS_CODE" in {
        r["field"] for r in convert_front_pages([_export(tmp_path)]).underivable.to_pylist()
    }


def test_converted_lists_import_with_clinical_codes_mapped(tmp_path: Path) -> None:
    from opendip.codes.versions import load_mapping_national

    conversion = convert_front_pages([_export(tmp_path)], hospital_id="H4101")
    (tmp_path / "map.csv").write_text(MAPPING, encoding="utf-8")
    rows, _ = load_mapping_national(tmp_path / "map.csv")
    unmapped = map_clinical_codes(conversion, rows, demo_code_tables())
    assert unmapped.num_rows == 0  # K80.100x002 mapped; the others are insurance codes
    result = import_settlement_lists(write_converted(conversion, tmp_path / "converted"))
    assert result.counts()["settlement_lists"] == (3, 2, 1)  # the third: no main diagnosis
    cases = {c["case_id"]: c for c in result.cases.to_pylist()}
    first = cases["A2024000123-1"]
    assert first["main_diagnosis"] == "K80.100" and first["other_diagnoses"] == ["E11.900"]
    assert first["main_procedure"] == "51.2300" and first["total_cost"] == 745580
    assert first["insurance_type"] == "employee" and first["los_days"] == 6
    assert cases["A2024000124-2"]["age_days"] == 5
    procedure = result.records["procedures"].accepted.to_pylist()[0]
    assert procedure["anaesthesia_method"] == "1"  # 全身麻醉 → CV06.00.103 code


def test_unmapped_clinical_codes_are_counted(tmp_path: Path) -> None:
    conversion = convert_front_pages([_export(tmp_path)], hospital_id="H4101")
    empty = pa.table(
        {"kind": pa.array([], pa.string()), "clinical_code": pa.array([], pa.string()),
         "insurance_code": pa.array([], pa.string())}
    )  # fmt: skip
    unmapped = map_clinical_codes(conversion, empty, demo_code_tables())
    assert unmapped.to_pylist() == [
        {"kind": "diagnosis", "clinical_code": "K80.100x002", "occurrences": 1}
    ]


def test_cli_front_pages(tmp_path: Path) -> None:
    (tmp_path / "map.csv").write_text(MAPPING, encoding="utf-8")
    out = tmp_path / "out"
    run = CliRunner().invoke(
        app,
        ["import", "front-pages", str(_export(tmp_path, "gb18030")), "--out", str(out),
         "--hospital-id", "H4101", "--mapping", str(tmp_path / "map.csv")],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "无法从首页取得的结算清单字段" in run.output
    assert pq.read_table(out / "cases.parquet").num_rows == 2
    text = (out / "underivable.csv").read_text(encoding="utf-8-sig")
    assert "基金支付类型" in text and "医保结算记录" in text
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    run = CliRunner().invoke(app, ["import", "front-pages", str(bad), "--out", str(out)])
    assert run.exit_code == 1 and "BAH" in run.output


def test_cli_front_page_qc(tmp_path: Path) -> None:
    """Discharged 03-11, 03-09, 03-10, submitted 03-18 (limit 7): the 2nd (day 9) and 3rd
    (day 8) are late; the export has no 出院科别 (CYKB) column, the 3rd no main diagnosis;
    the list of the 1st holds the insurance code K80.100 where the page has K80.100x002."""
    lists = tmp_path / "lists.parquet"
    pq.write_table(
        pa.table({"case_id": ["A2024000123-1"], "hospital_id": ["H4101"],
                  "main_diagnosis": ["K80.100"], "main_procedure": ["51.2300"]}),
        lists,
    )  # fmt: skip
    out = tmp_path / "out"
    run = CliRunner().invoke(
        app,
        ["import", "front-pages", str(_export(tmp_path)), "--out", str(out),
         "--hospital-id", "H4101", "--lists", str(lists), "--submitted", "2024-03-18"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "病案首页质控" in run.output
    found = pq.read_table(out / "front_page_findings.parquet").to_pylist()
    assert [(f["case_id"], f["rule_id"], f["field"]) for f in found] == [
        ("A2024000123-1", "FP-CON-001", "front_pages.main_diagnosis"),
        ("A2024000123-1", "FP-REQ-001", "front_pages.department"),
        ("A2024000124-2", "FP-REQ-001", "front_pages.department"),
        ("A2024000124-2", "FP-TIME-001", "front_pages.submitted_date"),
        ("A2024000125-1", "FP-REQ-001", "front_pages.department"),
        ("A2024000125-1", "FP-REQ-001", "front_pages.main_diagnosis"),
        ("A2024000125-1", "FP-TIME-001", "front_pages.submitted_date"),
    ]
    assert found[0]["message"] == "主要诊断编码不一致：病案首页 K80.100x002，结算清单 K80.100"
    assert found[3]["message"] == "病案首页上传日期 2024-03-18 在出院后第 9 天，超过 7 天时限"
    status = pq.read_table(out / "front_page_status.parquet")
    assert status["error_count"].to_pylist() == [2, 2, 3]
    bad = CliRunner().invoke(
        app, ["import", "front-pages", str(_export(tmp_path)), "--out", str(out),
              "--submitted", "18/03/2024"],
    )  # fmt: skip
    assert bad.exit_code == 1 and "--submitted 不是 YYYY-MM-DD 日期" in bad.output
