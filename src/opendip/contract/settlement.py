"""The settlement list as it arrives (医疗保障基金结算清单, interfaces 4101/4101A/4103):
one main record per case and child records — diagnoses, procedures, ICU stays, fee rows,
fund payments. The flat `cases` table the engine uses is derived from these
(`opendip.ingest.settlement.flatten`). Field codes of the national platform (upper or lower
case, with or without underscores) and Chinese headers are accepted as aliases.
"""

from __future__ import annotations

import pyarrow as pa

from opendip.contract.columns import Column, TableContract
from opendip.contract.tables import ADMISSION_ROUTES, DISCHARGE_METHODS, INSURANCE_TYPES, SEXES

S = pa.string()
D = pa.date32()
TS = pa.timestamp("s")
I16 = pa.int16()
I32 = pa.int32()
I64 = pa.int64()

#: 入院病情 (ADM_COND_TYPE): 1 有, 2 临床未确定, 3 情况不明, 4 无.
ADMISSION_CONDITIONS = ("1", "2", "3", "4")
#: Canonical diagnosis kinds: western (grouping input), TCM main disease 主病, TCM syndrome 主证.
DIAGNOSIS_KINDS = ("wm", "tcm_disease", "tcm_syndrome")
DIAGNOSIS_KIND_LABELS = {"wm": "西医诊断", "tcm_disease": "中医主病", "tcm_syndrome": "中医主证"}
#: DIAG_TYPE conventions (national-formats.md §1.3): the settlement-list code used by HIS
#: (1 西医主要, 2 西医其他, 3 中医主病, 4 中医主证) and the platform dictionary (1 西医, 2 中医主病,
#: 3 中医主证). The importer takes the convention as an option; text values work in both.
DIAGNOSIS_TYPE_CONVENTIONS: dict[str, dict[str, str]] = {
    "list": {"1": "wm", "2": "wm", "3": "tcm_disease", "4": "tcm_syndrome"},
    "platform": {"1": "wm", "2": "tcm_disease", "3": "tcm_syndrome"},
}
DIAGNOSIS_TYPE_TEXT = {
    "西医": "wm", "西医诊断": "wm", "西医主要诊断": "wm", "西医其他诊断": "wm",
    "主要诊断": "wm", "其他诊断": "wm", "中医主病": "tcm_disease", "中医主病诊断": "tcm_disease",
    "主病": "tcm_disease", "中医主证": "tcm_syndrome", "中医主证诊断": "tcm_syndrome",
    "主证": "tcm_syndrome", "wm": "wm", "tcm_disease": "tcm_disease",
    "tcm_syndrome": "tcm_syndrome",
}  # fmt: skip
#: 麻醉方式 (ANST_WAY, CV06.00.103 current table, two-digit subtypes included).
ANAESTHESIA_METHODS = (
    "1", "11", "12", "13", "2", "21", "22", "3", "31", "32", "33", "34", "35", "36",
    "4", "41", "42", "43", "44", "45", "9",
)  # fmt: skip
#: 医疗收费项目类别 (MED_CHRGITM) → the flat table's fee column.
FEE_CATEGORIES: dict[str, str] = {
    "01": "fee_bed", "02": "fee_consultation", "03": "fee_examination",
    "04": "fee_laboratory", "05": "fee_treatment", "06": "fee_surgery", "07": "fee_nursing",
    "08": "fee_materials", "09": "fee_western_medicine", "10": "fee_herbal_pieces",
    "11": "fee_chinese_patent_medicine", "12": "fee_general_treatment",
    "13": "fee_registration", "14": "fee_other",
}  # fmt: skip
#: 基金支付类型 (FUND_PAY_TYPE, national codes) → the flat table's payment column; other
#: fund types (个人账户 310200, 公务员医疗补助 320100 …) are kept in the fund rows only.
FUND_COLUMNS: dict[str, str] = {
    "310100": "fund_paid",  # 职工基本医疗保险统筹基金
    "390100": "fund_paid",  # 城乡居民基本医疗保险基金
    "330100": "serious_illness_paid",  # 职工大额医疗费用补助
    "390200": "serious_illness_paid",  # 城乡居民大病医疗保险
    "610100": "medical_aid_paid",  # 医疗救助基金
}
FUND_TYPE_LABELS = {
    "310100": "职工基本医疗保险统筹基金", "310200": "职工个人账户", "320100": "公务员医疗补助",
    "330100": "大额医疗费用补助", "340100": "离休人员医疗保障", "350100": "一至六级残疾军人医疗补助",
    "370100": "企业补充医疗保险", "390100": "城乡居民基本医疗保险基金",
    "390200": "城乡居民大病医疗保险", "510100": "生育基金", "610100": "医疗救助基金",
    "999996": "医院垫付", "999997": "其他",
}  # fmt: skip

_CASE_ID = Column(
    "case_id",
    S,
    "结算清单号",
    aliases=("结算ID", "SETL_ID", "清单流水号", "SETL_LIST_ID", "SETL_LIST_SN"),
    description="结算ID（SETL_ID），主记录与子记录的关联键",
)


def _money(name: str, label: str, *aliases: str, required: bool = False) -> Column:
    return Column(name, I64, label, required=required, aliases=aliases, unit="fen")


SETTLEMENT_LISTS = TableContract(
    name="settlement_lists",
    label="结算清单主记录（setlinfo）",
    key=("case_id",),
    columns=(
        _CASE_ID,
        Column("visit_id", S, "就诊ID", required=False, aliases=("MDTRT_ID",)),
        Column(
            "hospital_id", S, "定点医疗机构代码", aliases=("定点医药机构编号", "FIXMEDINS_CODE")
        ),
        Column(
            "hospital_name",
            S,
            "定点医疗机构名称",
            required=False,
            aliases=("定点医药机构名称", "FIXMEDINS_NAME"),
        ),
        Column("patient_id", S, "人员编号", aliases=("PSN_NO", "个人编码")),
        Column("record_no", S, "病案号", required=False, aliases=("MEDCASNO", "BAH")),
        Column(
            "insurance_type",
            S,
            "险种类型",
            aliases=("险种", "INSUTYPE"),
            allowed=INSURANCE_TYPES,
            description="310 职工 / 390 居民",
        ),
        Column("sex", S, "性别", aliases=("GEND",), allowed=SEXES),
        Column("birth_date", D, "出生日期", required=False, aliases=("BRDY",)),
        Column("age", I16, "年龄", required=False, aliases=("AGE", "年龄(岁)")),
        Column(
            "age_days",
            I32,
            "年龄(天)",
            required=False,
            aliases=("NWB_AGE", "AGE_DAYS", "(不足1周岁)年龄", "不足1周岁年龄(天)"),
        ),
        Column(
            "newborn_admit_type", S, "新生儿入院类型", required=False, aliases=("NWB_ADM_TYPE",)
        ),
        Column(
            "newborn_birth_weight_g",
            I32,
            "新生儿出生体重(克)",
            required=False,
            aliases=("NWB_BIR_WT", "新生儿出生体重", "NWBBIRWT"),
        ),
        Column(
            "newborn_admit_weight_g",
            I32,
            "新生儿入院体重(克)",
            required=False,
            aliases=("NWB_ADM_WT", "新生儿入院体重", "NWBADMWT"),
        ),
        Column(
            "newborn_birth_weights",
            S,
            "多新生儿出生体重",
            required=False,
            aliases=("MUL_NWB_BIR_WT",),
            description="克，多个以逗号分隔",
        ),
        Column(
            "newborn_admit_weights",
            S,
            "多新生儿入院体重",
            required=False,
            aliases=("MUL_NWB_ADM_WT",),
            description="克，多个以逗号分隔",
        ),
        Column("inpatient_type", S, "住院医疗类型", required=False, aliases=("IPT_MED_TYPE",)),
        Column("treatment_type", S, "治疗类别", required=False, aliases=("TRT_TYPE",)),
        Column("admit_time", TS, "入院时间", aliases=("ADM_TIME", "入院日期")),
        Column("discharge_time", TS, "出院时间", aliases=("DSCG_TIME", "DSCG_DATE", "出院日期")),
        Column("los_days", I32, "实际住院天数", required=False, aliases=("ACT_IPT_DAYS",)),
        Column(
            "admission_route",
            S,
            "入院途径",
            required=False,
            aliases=("ADM_WAY", "ADM_WAY_CODE"),
            allowed=ADMISSION_ROUTES,
        ),
        Column(
            "discharge_method",
            S,
            "离院方式",
            required=False,
            aliases=("DSCG_WAY",),
            allowed=DISCHARGE_METHODS,
        ),
        Column("admit_department", S, "入院科别", required=False, aliases=("ADM_CATY",)),
        Column("department", S, "出院科别", required=False, aliases=("DSCG_CATY",)),
        Column(
            "transfer_departments",
            S,
            "转科科别",
            required=False,
            aliases=("REFLDEPT_DEPT", "REFL_CATY"),
        ),
        Column("doctor_id", S, "主诊医师代码", required=False, aliases=("CHFPDR_CODE",)),
        Column("doctor_name", S, "主诊医师姓名", required=False, aliases=("CHFPDR_NAME",)),
        Column(
            "outpatient_diagnosis_code",
            S,
            "门(急)诊西医诊断代码",
            required=False,
            aliases=("WM_DISE_CODE", "OTP_WM_DIAG_DISE_CODE", "门(急)诊诊断代码"),
        ),
        Column(
            "outpatient_diagnosis_name",
            S,
            "门(急)诊西医诊断",
            required=False,
            aliases=("OTP_WM_DISE", "OTP_WM_DIAG", "门(急)诊诊断"),
        ),
        Column(
            "outpatient_tcm_code",
            S,
            "门(急)诊中医诊断代码",
            required=False,
            aliases=("TCM_DISE_CODE", "TCMDISECODE"),
        ),
        Column(
            "outpatient_tcm_name",
            S,
            "门(急)诊中医诊断",
            required=False,
            aliases=("OTP_TCM_DISE", "OTPTCMDISE"),
        ),
        Column(
            "ventilator_duration",
            S,
            "呼吸机使用时长",
            required=False,
            aliases=("VENT_USED_DURA",),
            description="天/小时/分钟，如 1/13/24",
        ),
        Column(
            "ventilator_days", I32, "呼吸机使用天数", required=False, aliases=("VENT_USED_DAYS",)
        ),
        Column(
            "ventilator_hours",
            I32,
            "呼吸机使用小时数",
            required=False,
            aliases=("VENT_USED_H_CNT",),
        ),
        Column(
            "ventilator_minutes",
            I32,
            "呼吸机使用分钟数",
            required=False,
            aliases=("VENT_USED_M_CNT",),
        ),
        Column(
            "coma_before_admission",
            S,
            "颅脑损伤患者入院前昏迷时长",
            required=False,
            aliases=("PWCRY_BFADM_COMA_DURA",),
        ),
        Column(
            "coma_after_admission",
            S,
            "颅脑损伤患者入院后昏迷时长",
            required=False,
            aliases=("PWCRY_AFADM_COMA_DURA",),
        ),
        Column("payment_method", S, "医保支付方式", required=False, aliases=("HI_PAYMTD",)),
        Column(
            "settle_begin_date",
            D,
            "结算开始日期",
            required=False,
            aliases=("SETL_BEGN_DATE", "SETL_BEGNDATE", "JSSJ_KS"),
        ),
        Column(
            "settle_end_date",
            D,
            "结算结束日期",
            required=False,
            aliases=("SETL_END_DATE", "SETL_ENDDATE", "JSSJ_JS"),
        ),
        Column("settle_time", TS, "结算时间", required=False, aliases=("SETL_TIME",)),
        Column("upload_time", TS, "申报时间", required=False, aliases=("DCLA_TIME", "上传时间")),
        Column(
            "settle_month",
            S,
            "结算月份",
            required=False,
            aliases=("结算年月", "SETL_MONTH"),
            description="YYYY-MM；为空时取结算时间、结算结束日期或出院时间的月份",
        ),
        _money("total_cost", "医疗总费用", "MEDFEE_SUMAMT", "总费用"),
        _money("personal_copay", "个人自付", "PSN_SELFPAY", "PSN_SELFPAY_AMT"),
        _money("personal_selfpay", "个人自费", "PSN_OWNPAY", "PSN_OWNPAY_FEE"),
        _money("account_paid", "个人账户支出", "ACCT_PAY", "ACCT_PAYAMT"),
        _money("cash_paid", "个人现金支付", "PSN_CASHPAY", "CASH_PAYAMT"),
    ),
)

SETTLEMENT_DIAGNOSES = TableContract(
    name="settlement_diagnoses",
    label="诊断信息（diseinfo）",
    columns=(
        _CASE_ID,
        Column(
            "diagnosis_kind",
            S,
            "诊断类别",
            required=False,
            aliases=("DIAG_TYPE",),
            allowed=DIAGNOSIS_KINDS,
            description="西医诊断 / 中医主病 / 中医主证（DIAG_TYPE 按所选编码约定换算）",
        ),
        Column(
            "main_flag",
            S,
            "主诊断标志",
            required=False,
            aliases=("MAINDIAG_FLAG",),
            allowed=("1", "0"),
        ),
        Column("diagnosis_code", S, "诊断代码", aliases=("DIAG_CODE", "疾病代码")),
        Column("diagnosis_name", S, "诊断名称", required=False, aliases=("DIAG_NAME",)),
        Column(
            "admission_condition",
            S,
            "入院病情",
            required=False,
            aliases=("ADM_COND_TYPE",),
            allowed=ADMISSION_CONDITIONS,
        ),
    ),
)

SETTLEMENT_PROCEDURES = TableContract(
    name="settlement_procedures",
    label="手术操作信息（oprninfo）",
    columns=(
        _CASE_ID,
        Column(
            "main_flag",
            S,
            "主手术操作标志",
            required=False,
            aliases=("OPRN_OPRT_TYPE", "MAIN_OPRN_FLAG", "手术操作类别"),
            allowed=("1", "0"),
        ),
        Column("procedure_code", S, "手术操作代码", aliases=("OPRN_OPRT_CODE",)),
        Column("procedure_name", S, "手术操作名称", required=False, aliases=("OPRN_OPRT_NAME",)),
        Column("procedure_date", D, "手术操作日期", required=False, aliases=("OPRN_OPRT_DATE",)),
        Column(
            "begin_time", TS, "手术操作开始时间", required=False, aliases=("OPRN_OPRT_BEGNTIME",)
        ),
        Column("end_time", TS, "手术操作结束时间", required=False, aliases=("OPRN_OPRT_ENDTIME",)),
        Column(
            "anaesthesia_method",
            S,
            "麻醉方式",
            required=False,
            aliases=("ANST_WAY",),
            allowed=ANAESTHESIA_METHODS,
        ),
        Column("anaesthesia_begin", TS, "麻醉开始时间", required=False, aliases=("ANST_BEGNTIME",)),
        Column("anaesthesia_end", TS, "麻醉结束时间", required=False, aliases=("ANST_ENDTIME",)),
        Column("operator_code", S, "术者医师代码", required=False, aliases=("OPER_DR_CODE",)),
        Column("operator_name", S, "术者医师姓名", required=False, aliases=("OPER_DR_NAME",)),
        Column("anaesthetist_code", S, "麻醉医师代码", required=False, aliases=("ANST_DR_CODE",)),
        Column("anaesthetist_name", S, "麻醉医师姓名", required=False, aliases=("ANST_DR_NAME",)),
    ),
)

SETTLEMENT_ICU = TableContract(
    name="settlement_icu",
    label="重症监护信息（icuinfo）",
    columns=(
        _CASE_ID,
        Column("ward_type", S, "重症监护病房类型", required=False, aliases=("SCS_CUTD_WARD_TYPE",)),
        Column("in_time", TS, "进重症监护室时间", aliases=("SCS_CUTD_INPOOL_TIME",)),
        Column("out_time", TS, "出重症监护室时间", aliases=("SCS_CUTD_EXIT_TIME",)),
        Column(
            "duration",
            S,
            "重症监护合计时长",
            required=False,
            aliases=("SCS_CUTD_SUM_DURA",),
            description="天/小时/分钟",
        ),
    ),
)

SETTLEMENT_FEES = TableContract(
    name="settlement_fees",
    label="收费项目信息（iteminfo）",
    columns=(
        _CASE_ID,
        Column(
            "fee_category",
            S,
            "医疗收费项目类别",
            aliases=("MED_CHRGITM", "MED_CHRGITM_TYPE", "收费项目类别"),
            allowed=tuple(FEE_CATEGORIES),
        ),
        _money("amount", "金额", "AMT", "ITEM_SUMAMT", required=True),
        _money("class_a", "甲类费用", "CLAA_SUMFEE", "ITEM_CLAA_AMT", "甲类费用合计"),
        _money("class_b", "乙类金额", "CLAB_AMT", "ITEM_CLAB_AMT"),
        _money(
            "full_selfpay",
            "全自费金额",
            "FULAMT_OWNPAY_AMT",
            "ITEM_OWNPAY_AMT",
            "ITEM_FULAMT_OWNPAY_AMT",
        ),
        _money("other_amount", "其他金额", "OTH_AMT", "ITEM_OTH_AMT"),
    ),
)

SETTLEMENT_FUNDS = TableContract(
    name="settlement_funds",
    label="基金支付信息（payinfo）",
    columns=(
        _CASE_ID,
        Column("fund_type", S, "基金支付类型", aliases=("FUND_PAY_TYPE", "POOLAREA_FUND_PAY_TYPE")),
        Column(
            "fund_type_name",
            S,
            "基金支付类型名称",
            required=False,
            aliases=("POOLAREA_FUND_PAY_NAME", "FUND_PAY_TYPE_NAME"),
        ),
        _money("amount", "基金支付金额", "FUND_PAYAMT", required=True),
    ),
)

#: Record types in file order, with the names a file, sheet or JSON node may carry.
RECORD_TYPES: dict[str, TableContract] = {
    "settlement_lists": SETTLEMENT_LISTS,
    "diagnoses": SETTLEMENT_DIAGNOSES,
    "procedures": SETTLEMENT_PROCEDURES,
    "icu": SETTLEMENT_ICU,
    "fees": SETTLEMENT_FEES,
    "funds": SETTLEMENT_FUNDS,
}
RECORD_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "settlement_lists": (
        "setlinfo",
        "setl_list",
        "结算清单",
        "主记录",
        "清单主表",
        "mdtrt_d",
        "setl_d",
    ),
    "diagnoses": ("diseinfo", "diag", "setl_list_diag_d", "诊断"),
    "procedures": ("oprninfo", "oprn", "setl_list_oprn_d", "手术"),
    "icu": ("icuinfo", "scs_cutd", "重症监护"),
    "fees": ("iteminfo", "chrgitm", "收费", "费用"),
    "funds": ("payinfo", "fund", "基金"),
}
RECORD_TYPE_LABELS = {name: contract.label for name, contract in RECORD_TYPES.items()}
CHILD_TYPES = tuple(t for t in RECORD_TYPES if t != "settlement_lists")
