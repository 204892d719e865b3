"""Settlement lists in the multi-record structure: import per record type (nothing lost),
orphan and no-main-diagnosis quarantine, the flat view, round trips through CSV/Excel/JSON and
the same money as the flat form."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opendip.cli.main import app
from opendip.codes import demo_code_tables
from opendip.contract import CASES
from opendip.ingest import import_table
from opendip.ingest.settlement import (
    SettlementImportError,
    flatten,
    import_settlement_lists,
    record_type_of_headers,
    record_type_of_name,
)
from opendip.ingest.settlement_export import records_from_flat, write_records

REGION = Path(__file__).resolve().parents[1] / "web" / "region"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _small(tmp_path: Path) -> list[Path]:
    """Four lists: S1 complete, S2 minimal, S3 without a main-diagnosis row, S4 a bad sex;
    child rows of S9 that has no main record."""
    return [
        _write(
            tmp_path / "setlinfo.csv",
            "SETL_ID,FIXMEDINS_CODE,PSN_NO,INSUTYPE,GEND,AGE,ADM_TIME,DSCG_TIME,DSCG_WAY,"
            "MEDFEE_SUMAMT,PSN_SELFPAY,SETL_TIME\n"
            "S1,H001,P1,310,1,60,2026-03-05 09:12:00,2026-03-11 10:00:00,1,7455.80,1000.00,"
            "2026-03-11 10:30:00\n"
            "S2,H001,P2,390,2,30,2026-03-01 08:00:00,2026-03-04 08:00:00,1,,,\n"
            "S3,H002,P3,390,2,40,2026-03-01 08:00:00,2026-03-02 08:00:00,1,100.00,,\n"
            "S4,H002,P4,390,X,40,2026-03-01 08:00:00,2026-03-02 08:00:00,1,100.00,,\n",
        ),
        _write(
            tmp_path / "diseinfo.csv",
            "SETL_ID,DIAG_TYPE,MAINDIAG_FLAG,DIAG_CODE,DIAG_NAME,ADM_COND_TYPE\n"
            "S1,1,1,K80.100,胆囊结石伴有其他胆囊炎,1\n"
            "S1,2,0,E11.900,2型糖尿病,1\n"
            "S1,3,0,A04.01.03,胸痹心痛病,1\n"
            "S2,1,1,J18.900,肺炎,1\n"
            "S3,2,0,E11.900,2型糖尿病,1\n"
            "S4,1,1,J18.900,肺炎,1\n"
            "S9,1,1,J18.900,肺炎,1\n",
        ),
        _write(
            tmp_path / "oprninfo.csv",
            "SETL_ID,MAIN_OPRN_FLAG,OPRN_OPRT_CODE,OPRN_OPRT_DATE,ANST_WAY,OPRN_OPRT_BEGNTIME\n"
            "S1,1,51.2300,2026-03-06,全身麻醉,2026-03-06 09:30:00\n"
            "S1,0,51.8800,,,2026-03-07 09:00:00\n"
            "S9,1,47.0100,2026-03-06,1,\n",
        ),
        _write(
            tmp_path / "icuinfo.csv",
            "SETL_ID,SCS_CUTD_WARD_TYPE,SCS_CUTD_INPOOL_TIME,SCS_CUTD_EXIT_TIME\n"
            "S1,ICU,2026-03-06 11:00:00,2026-03-07 12:00:00\n",
        ),
        _write(
            tmp_path / "iteminfo.csv",
            "SETL_ID,MED_CHRGITM,AMT,FULAMT_OWNPAY_AMT\n"
            "S1,01,420.00,0\n"
            "S1,06,3150.00,0\n"
            "S1,08,2210.50,230.00\n"
            "S1,09,1675.30,65.00\n"
            "S2,床位费,80.00,\n"
            "S4,01,100.00,\n",
        ),
        _write(
            tmp_path / "payinfo.csv",
            "SETL_ID,FUND_PAY_TYPE,FUND_PAYAMT\nS1,310100,5120.60\nS1,330100,0.00\n"
            "S1,310200,100.00\n",
        ),
    ]


def test_orphans_and_lists_without_main_diagnosis_are_quarantined(tmp_path: Path) -> None:
    result = import_settlement_lists(_small(tmp_path))
    counts = result.counts()
    assert counts == {
        "settlement_lists": (4, 2, 2),
        "diagnoses": (7, 4, 3),
        "procedures": (3, 2, 1),
        "icu": (1, 1, 0),
        "fees": (6, 5, 1),
        "funds": (3, 3, 0),
    }
    header = result.records["settlement_lists"]
    q = header.quarantine
    reasons = dict(zip(q["row_number"].to_pylist(), q["reason"].to_pylist(), strict=True))
    assert "无主要诊断行" in reasons[4]  # S3
    assert "性别" in reasons[5]  # S4
    dx = result.records["diagnoses"].quarantine
    by_row = dict(zip(dx["row_number"].to_pylist(), dx["reason"].to_pylist(), strict=True))
    assert "所属结算清单已隔离" in by_row[6] and "所属结算清单已隔离" in by_row[7]  # S3, S4
    assert "孤立子记录" in by_row[8]  # S9
    op = result.records["procedures"].quarantine
    assert op["row_number"].to_pylist() == [4] and "孤立子记录" in op["reason"][0].as_py()
    errors = result.records["diagnoses"].errors
    assert sorted(set(errors["rule"].to_pylist())) == ["orphan_record", "parent_quarantined"]


def test_flat_view_of_the_small_lists(tmp_path: Path) -> None:
    cases = import_settlement_lists(_small(tmp_path)).cases
    assert cases.schema == CASES.schema
    s1, s2 = cases.to_pylist()
    assert s1["case_id"] == "S1" and s2["case_id"] == "S2"
    assert s1["main_diagnosis"] == "K80.100"
    assert s1["other_diagnoses"] == ["E11.900"]  # the TCM row (DIAG_TYPE 3) is not grouping input
    assert s1["main_procedure"] == "51.2300" and s1["other_procedures"] == ["51.8800"]
    assert str(s1["main_procedure_date"]) == "2026-03-06"
    assert s1["icu_days"] == 2  # 25 hours → 2 days (ceil)
    assert s1["total_cost"] == 745580  # MEDFEE_SUMAMT of the main record
    assert s1["fee_bed"] == 42000 and s1["fee_surgery"] == 315000
    assert s1["fee_materials"] == 221050 and s1["fee_western_medicine"] == 167530
    assert s1["fee_nursing"] is None  # no row of that category
    assert s1["out_of_list_cost"] == 29500  # 230.00 + 65.00
    assert s1["fund_paid"] == 512060 and s1["serious_illness_paid"] == 0
    assert s1["medical_aid_paid"] is None  # 310200 个人账户 is kept in the fund rows only
    assert s1["personal_copay"] == 100000
    assert s1["settle_month"] == "2026-03" and str(s1["admit_date"]) == "2026-03-05"
    assert s2["total_cost"] == 8000 and s2["fee_bed"] == 8000  # no total: Σ fee rows
    assert s2["other_diagnoses"] == [] and s2["main_procedure"] is None and s2["icu_days"] == 0
    assert s2["settle_month"] == "2026-03"  # from the discharge time


def test_platform_diagnosis_type_convention(tmp_path: Path) -> None:
    files = _small(tmp_path)
    # In the platform convention DIAG_TYPE 2 is 中医主病: E11.900 of S1 leaves the flat view.
    cases = import_settlement_lists(files, diagnosis_types="platform").cases
    assert cases.to_pylist()[0]["other_diagnoses"] == []
    with pytest.raises(SettlementImportError, match="编码约定"):
        import_settlement_lists(files, diagnosis_types="nope")


def test_record_types_from_names_and_headers() -> None:
    assert record_type_of_name("diseinfo_202603.csv") == "diagnoses"
    assert record_type_of_name("结算清单主记录") == "settlement_lists"
    assert record_type_of_name("手术操作信息（oprninfo）") == "procedures"
    assert record_type_of_name("misc.csv") is None
    assert record_type_of_headers(["SETL_ID", "FUND_PAY_TYPE", "FUND_PAYAMT"]) == "funds"
    assert record_type_of_headers(["SETL_ID", "MED_CHRGITM", "AMT"]) == "fees"
    assert record_type_of_headers(["foo"]) is None


def test_unknown_file_and_missing_main_records_are_refused(tmp_path: Path) -> None:
    misc = _write(tmp_path / "misc.csv", "a,b\n1,2\n")
    with pytest.raises(SettlementImportError, match="无法判断记录类型"):
        import_settlement_lists([misc])
    files = _small(tmp_path)
    with pytest.raises(SettlementImportError, match="没有结算清单主记录"):
        import_settlement_lists(files[1:])
    bad = _write(tmp_path / "x.json", "{not json")
    with pytest.raises(SettlementImportError, match="JSON 格式错误"):
        import_settlement_lists([bad])


def test_national_4101_payload(tmp_path: Path) -> None:
    """The 4101A request of national-formats.md §5.1 with the 4101 fee and fund nodes (§5.2),
    plus the identity fields the agency tables carry."""
    payload = {
        "infno": "4101A",
        "input": {
            "setlinfo": {
                "psn_no": "41000000000000000000001234", "mdtrt_id": "410100G0000012345678",
                "setl_id": "410100G0000087654321", "fixmedins_code": "H41010500001",
                "insutype": "310", "gend": "1", "age": "55", "medcasno": "A2024000123",
                "dcla_time": "2024-03-12 10:20:00", "adm_way": "2", "trt_type": "1",
                "adm_time": "2024-03-05 09:12:00", "dscg_time": "2024-03-11 10:00:00",
                "dscg_caty": "04.01", "otp_wm_dise": "胆囊结石伴胆囊炎", "wm_dise_code": "K80.100",
                "vent_used_dura": "0/0/0", "dscg_way": "1", "chfpdr_code": "D410105012345",
                "setl_begn_date": "2024-03-05", "setl_end_date": "2024-03-11", "hi_paymtd": "3",
            },
            "diseinfo": [
                {"diag_type": "1", "diag_code": "K80.100", "diag_name": "胆囊结石伴有其他胆囊炎",
                 "adm_cond_type": "1", "maindiag_flag": "1"},
                {"diag_type": "2", "diag_code": "E11.900", "diag_name": "2型糖尿病",
                 "adm_cond_type": "1", "maindiag_flag": "0"},
                {"diag_type": "2", "diag_code": "J18.000", "diag_name": "支气管肺炎",
                 "adm_cond_type": "4", "maindiag_flag": "0"},
            ],
            "oprninfo": [
                {"oprn_oprt_type": "1", "oprn_oprt_code": "51.2300",
                 "oprn_oprt_name": "腹腔镜下胆囊切除术", "anst_way": "1",
                 "oper_dr_code": "D410105012399", "anst_dr_code": "D410105012377",
                 "oprn_oprt_begntime": "2024-03-06 09:30:00",
                 "oprn_oprt_endtime": "2024-03-06 10:40:00",
                 "anst_begntime": "2024-03-06 09:10:00", "anst_endtime": "2024-03-06 10:55:00"},
            ],
            "icuinfo": [], "bldinfo": [], "opspdiseinfo": [],
            "iteminfo": [
                {"med_chrgitm": "01", "amt": 420.00, "fulamt_ownpay_amt": 0},
                {"med_chrgitm": "06", "amt": 3150.00, "fulamt_ownpay_amt": 0},
                {"med_chrgitm": "08", "amt": 2210.50, "fulamt_ownpay_amt": 230.00},
                {"med_chrgitm": "09", "amt": 1675.30, "fulamt_ownpay_amt": 65.00},
            ],
            "payinfo": [
                {"fund_pay_type": "310100", "fund_payamt": 5120.60},
                {"fund_pay_type": "330100", "fund_payamt": 0.00},
            ],
        },
    }  # fmt: skip
    path = tmp_path / "4101.json"
    path.write_text(json.dumps([payload], ensure_ascii=False), encoding="utf-8")
    result = import_settlement_lists([path])
    (case,) = result.cases.to_pylist()
    assert case["case_id"] == "410100G0000087654321"
    assert case["main_diagnosis"] == "K80.100"
    assert case["other_diagnoses"] == ["E11.900", "J18.000"]
    assert case["main_procedure"] == "51.2300"
    assert str(case["main_procedure_date"]) == "2024-03-06"  # from the start time (4101A)
    assert case["total_cost"] == 745580  # Σ iteminfo: 420.00 + 3150.00 + 2210.50 + 1675.30
    assert case["out_of_list_cost"] == 29500 and case["fund_paid"] == 512060
    header = result.records["settlement_lists"].accepted.to_pylist()[0]
    assert header["upload_time"].isoformat() == "2024-03-12T10:20:00"
    assert header["outpatient_diagnosis_code"] == "K80.100"
    procedure = result.records["procedures"].accepted.to_pylist()[0]
    assert procedure["anaesthesia_method"] == "1" and procedure["anaesthetist_code"]


@pytest.fixture(scope="module")
def region_cases() -> pa.Table:
    return pq.read_table(REGION / "cases_2026.parquet")


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("case_id", "ascending")])


def test_flatten_inverts_the_export(region_cases: pa.Table) -> None:
    unique = region_cases
    assert pc.count_distinct(unique["case_id"]).as_py() == unique.num_rows
    back = flatten(records_from_flat(unique))
    icu = pc.fill_null(unique["icu_days"], 0)
    expected = unique.set_column(unique.schema.get_field_index("icu_days"), "icu_days", icu)
    assert _sorted(back).equals(_sorted(expected))


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_region_round_trip_loses_nothing(region_cases: pa.Table, tmp_path: Path, fmt: str) -> None:
    """The demo region's year in the multi-record structure imports with nothing lost (per
    record type) and gives exactly the flat import's accepted cases."""
    records = records_from_flat(region_cases, demo_code_tables())
    files = write_records(records, tmp_path, (fmt,))
    result = import_settlement_lists(files)
    flat = import_table([REGION / "cases_2026.parquet"], CASES)
    for record_type, r in result.records.items():
        read, accepted, quarantined = r.read, r.accepted.num_rows, r.quarantine.num_rows
        assert read == records[record_type].num_rows, record_type
        assert read == accepted + quarantined, record_type
    header = result.records["settlement_lists"]
    assert header.quarantine.num_rows == flat.quarantine.num_rows
    assert _sorted(result.cases).equals(_sorted(flat.accepted))
    tcm = result.records["diagnoses"].accepted.filter(
        pc.equal(result.records["diagnoses"].accepted["diagnosis_kind"], "tcm_syndrome")
    )
    assert tcm.num_rows > 0  # TCM pairs travelled too


def _settle(cases: Path, tmp_path: Path, name: str) -> dict:
    from opendip.settlement.run import InputFiles, run_year
    from opendip.synth.policy import scaled_demo_policy

    policy = scaled_demo_policy(400, tmp_path / "policy.yaml")
    grouped = tmp_path / f"{name}_grouped.parquet"
    run = CliRunner().invoke(
        app,
        ["group", "--policy", str(policy), "--directory", str(REGION / "directory.parquet"),
         "--cases", str(cases), "--out", str(grouped)],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    files = InputFiles(
        policy=policy,
        cases=cases,
        grouped=grouped,
        directory=REGION / "directory.parquet",
        hospitals=REGION / "hospitals.parquet",
    )
    return run_year(files, 2026, tmp_path / name, excel=False)


def test_multi_record_region_settles_to_the_same_money(
    region_cases: pa.Table, tmp_path: Path
) -> None:
    flat = import_table([REGION / "cases_2026.parquet"], CASES).accepted
    pq.write_table(flat, tmp_path / "flat.parquet")
    files = write_records(records_from_flat(region_cases), tmp_path / "records", ("csv",))
    derived = import_settlement_lists(files).cases
    pq.write_table(derived, tmp_path / "derived.parquet")
    a = _settle(tmp_path / "flat.parquet", tmp_path, "flat")
    b = _settle(tmp_path / "derived.parquet", tmp_path, "derived")
    assert a["pools"] == b["pools"] and a["point_values"] == b["point_values"]
    assert a["point_values"] and all(v > 0 for v in a["point_values"].values())
    assert sum(p["cases"] for p in a["pools"] if "cases" in p) == sum(
        p["cases"] for p in b["pools"] if "cases" in p
    )
    hospitals_a = pq.read_table(tmp_path / "flat" / "hospitals.parquet")
    hospitals_b = pq.read_table(tmp_path / "derived" / "hospitals.parquet")
    assert hospitals_a.equals(hospitals_b)


def test_cli_import_settlement_lists(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = CliRunner().invoke(
        app, ["import", "settlement-lists", *map(str, _small(tmp_path)), "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    assert "诊断信息（diseinfo）" in run.output and "孤立子记录" in run.output
    assert pq.read_table(out / "cases.parquet").num_rows == 2
    quarantine = (out / "quarantine_diagnoses.csv").read_text(encoding="utf-8-sig")
    assert "孤立子记录" in quarantine and "S9" in quarantine
    run = CliRunner().invoke(
        app, ["import", "settlement-lists", str(tmp_path / "diseinfo.csv"), "--out", str(out)]
    )
    assert run.exit_code == 1 and "没有结算清单主记录" in run.output


# --- record-level QC ---------------------------------------------------------------------


def _records(**tables: list[dict]) -> dict[str, pa.Table]:
    from opendip.contract.settlement import RECORD_TYPES

    out = {}
    for name, contract in RECORD_TYPES.items():
        rows = tables.get(name, [])
        out[name] = pa.Table.from_pylist(rows, schema=contract.schema.with_metadata(None))
    return out


def _header(case_id: str, **extra: object) -> dict:
    import datetime as dt

    row = {
        "case_id": case_id, "hospital_id": "H001", "patient_id": "P1",
        "insurance_type": "employee", "sex": "1", "age": 60,
        "admit_time": dt.datetime(2026, 3, 5, 8, 0), "discharge_time": dt.datetime(2026, 3, 7, 8, 0),
    }  # fmt: skip
    return {**row, **extra}


def _dx(case_id: str, code: str, main: str = "1", kind: str = "wm", cond: str | None = "1") -> dict:
    return {"case_id": case_id, "diagnosis_kind": kind, "main_flag": main,
            "diagnosis_code": code, "admission_condition": cond}  # fmt: skip


def test_record_qc_findings_name_record_and_field() -> None:
    import datetime as dt

    from opendip.qc.records import check_records

    records = _records(
        settlement_lists=[
            _header("A", ventilator_days=2, ventilator_hours=0, ventilator_minutes=1),
            _header("B", age=0, age_days=3, newborn_birth_weights="2450,150"),
            _header("C", age=0, age_days=3, newborn_admit_weight_g=25000),
            _header("D"),
        ],
        diagnoses=[
            _dx("A", "K80.100"),
            _dx("A", "E11.900", main="0", cond=None),
            _dx("A", "A04.01.03", main="0", kind="tcm_disease"),
            _dx("B", "P07.300"),
            _dx("C", "P07.300"),
            _dx("D", "J18.900"),
            _dx("D", "J44.100"),
        ],
        procedures=[
            {
                "case_id": "A",
                "main_flag": "1",
                "procedure_code": "51.2300",
                "procedure_date": dt.date(2026, 3, 4),
                "begin_time": dt.datetime(2026, 3, 6, 10, 0),
                "end_time": dt.datetime(2026, 3, 6, 9, 0),
            },
        ],
        icu=[
            {
                "case_id": "D",
                "in_time": dt.datetime(2026, 3, 6, 8, 0),
                "out_time": dt.datetime(2026, 3, 8, 8, 0),
            },
        ],
    )
    findings = check_records(records, procedures=demo_code_tables().procedures)
    got = sorted(zip(findings["case_id"].to_pylist(), findings["rule_id"].to_pylist(),
                     findings["field"].to_pylist(), strict=True))  # fmt: skip
    assert got == [
        ("A", "QC-REC-DX-002", "diagnoses.admission_condition"),
        ("A", "QC-REC-OP-001", "procedures.procedure_date"),  # 3-04, admitted 3-05
        ("A", "QC-REC-OP-003", "procedures.anaesthesia_method"),  # 51.2300 is surgery
        ("A", "QC-REC-OP-004", "procedures.end_time"),  # ends before it begins
        ("A", "QC-REC-TCM-001", "settlement_lists.case_id"),  # 主病 without 主证
        ("A", "QC-REC-VENT-001", "settlement_lists.ventilator_days"),  # 2881 min > 2880
        ("B", "QC-REC-NWB-002", "settlement_lists.newborn_birth_weights"),  # 150 g
        ("C", "QC-REC-NWB-001", "settlement_lists.newborn_admit_weight_g"),  # 25000 g
        ("C", "QC-REC-NWB-003", "settlement_lists.newborn_birth_weight_g"),  # 3 days, none
        ("D", "QC-REC-DX-001", "settlement_lists.case_id"),  # two main diagnoses
        ("D", "QC-REC-ICU-001", "icu.out_time"),  # 3-08 08:00 after discharge 3-07 08:00
    ]
    messages = dict(zip(findings["rule_id"].to_pylist(), findings["message"].to_pylist(),
                        strict=True))  # fmt: skip
    assert messages["QC-REC-DX-002"] == (
        "诊断第2条：西医诊断 E11.900 未填写入院病情（1 有、2 临床未确定、3 情况不明、4 无）"
    )
    assert messages["QC-REC-VENT-001"] == "呼吸机使用时长 2881 分钟超过住院时长 2880 分钟"
    assert messages["QC-REC-DX-001"].startswith("诊断信息中主诊断标志为 1 的西医诊断有 2 行")
    assert messages["QC-REC-ICU-001"] == (
        "重症监护第1条：出重症监护室时间 2026-03-08 08:00:00 不在入院至出院时间内"
    )
    # one case alone gives exactly its rows of the batch answer
    alone = check_records(records, procedures=demo_code_tables().procedures, case_id="A")
    assert alone.equals(findings.filter(pc.equal(findings["case_id"], "A")))


def test_record_rules_refuse_unknown_fields(tmp_path: Path) -> None:
    from opendip.qc.records import RecordRuleError, load_record_rules

    path = tmp_path / "r.yaml"
    path.write_text(
        "version: '1'\nname: x\nrules:\n  - {id: R1, name: n, level: error, record: icu,"
        " field: nope, message: m, check: {type: required}}\n",
        encoding="utf-8",
    )
    with pytest.raises(RecordRuleError, match="未知字段 nope"):
        load_record_rules(path)
    assert len(load_record_rules().rules) >= 13


def test_generated_records_pass_the_time_rules(region_cases: pa.Table) -> None:
    """The generator's made-up times lie inside the stay: only the region's injected date
    errors (procedure dates outside the stay) are found."""
    from opendip.qc.records import check_records

    records = records_from_flat(region_cases, demo_code_tables())
    findings = check_records(records, procedures=demo_code_tables().procedures)
    rules = set(findings["rule_id"].to_pylist())
    assert rules <= {"QC-REC-OP-001", "QC-REC-OP-002"}
    bad = set(findings["case_id"].to_pylist())
    outside = region_cases.filter(
        pc.or_(
            pc.less(region_cases["main_procedure_date"], region_cases["admit_date"]),
            pc.greater(region_cases["main_procedure_date"], region_cases["discharge_date"]),
        )
    )
    assert bad == set(outside["case_id"].to_pylist())


def test_json_over_the_row_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opendip.ingest import limits

    monkeypatch.setattr(limits, "DEFAULT_LIMITS", limits.ImportLimits(max_rows=2))
    payload = [{"setlinfo": {"setl_id": f"S{i}"}, "diseinfo": []} for i in range(3)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(SettlementImportError, match="setlinfo 共 3 条，超过单次导入上限 2 条"):
        import_settlement_lists([path])


def test_excel_record_types_beyond_a_sheet_continue_on_more_sheets(
    region_cases: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openpyxl import load_workbook

    from opendip.ingest import settlement_export

    monkeypatch.setattr(settlement_export, "EXCEL_DATA_ROWS", 1000)
    small = region_cases.slice(0, 100)
    records = records_from_flat(small)
    (path,) = write_records(records, tmp_path, ("xlsx",))
    sheets = load_workbook(path, read_only=True).sheetnames
    fees = records["fees"].num_rows  # 14 categories × 100 cases
    assert fees > 1000 and "收费项目信息（iteminfo）2" in sheets
    result = import_settlement_lists([path])
    assert result.counts()["fees"] == (fees, fees, 0)


def test_record_types_over_the_file_row_limit_are_written_in_parts(
    region_cases: pa.Table, tmp_path: Path
) -> None:
    """A record type longer than the import's per-file row limit is written as numbered
    parts (as a province's fee export is split), and the parts import as one: nothing is
    refused, nothing lost (the demo/bench at a million cases had every fee file refused)."""
    from opendip.ingest.settlement_export import write_records_csv

    records = records_from_flat(region_cases, demo_code_tables())
    limit = 1_000
    files = write_records_csv(records, tmp_path, max_rows_per_file=limit)
    fees = records["fees"].num_rows
    assert fees > 2 * limit
    fee_files = sorted(p.name for p in files if p.name.startswith("fees"))
    assert fee_files == [f"fees_{k:03d}.csv" for k in range(1, -(-fees // limit) + 1)]
    result = import_settlement_lists(files)
    for record_type, r in result.records.items():
        assert r.read == records[record_type].num_rows, record_type
        assert r.read == r.accepted.num_rows + r.quarantine.num_rows, record_type
    whole = import_settlement_lists(write_records_csv(records, tmp_path / "whole"))
    assert _sorted(result.cases).equals(_sorted(whole.cases))


def test_a_repeated_and_a_missing_list_number_in_one_file_are_both_quarantined(
    tmp_path: Path,
) -> None:
    """A missing 结算清单号 beside a repeated one broke the duplicate check (a traceback
    instead of an import): both are now quarantined with their reasons, nothing lost."""
    row = "H001,P1,310,1,60,2026-03-05 09:12:00,2026-03-11 10:00:00,1,7455.80"
    files = [
        _write(
            tmp_path / "setlinfo.csv",
            "SETL_ID,FIXMEDINS_CODE,PSN_NO,INSUTYPE,GEND,AGE,ADM_TIME,DSCG_TIME,DSCG_WAY,"
            f"MEDFEE_SUMAMT\nS1,{row}\nS1,{row}\n,{row}\nS2,{row}\n",
        ),
        _write(
            tmp_path / "diseinfo.csv",
            "SETL_ID,DIAG_TYPE,MAINDIAG_FLAG,DIAG_CODE\nS1,1,1,J18.900\nS2,1,1,J18.900\n",
        ),
    ]
    result = import_settlement_lists(files)
    lists = result.records["settlement_lists"]
    assert (lists.read, lists.accepted.num_rows, lists.quarantine.num_rows) == (4, 2, 2)
    assert lists.accepted["case_id"].to_pylist() == ["S1", "S2"]
    q = lists.quarantine
    reasons = dict(zip(q["row_number"].to_pylist(), q["reason"].to_pylist(), strict=True))
    assert reasons[3] == "结算清单号：与第 2 行重复"
    assert "结算清单号" in reasons[4]
