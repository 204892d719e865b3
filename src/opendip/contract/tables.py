"""The canonical tables that flow between OpenDIP's steps (see docs/data-contract.md)."""

from __future__ import annotations

import pyarrow as pa

from opendip.contract.columns import Column, TableContract

S = pa.string()
D = pa.date32()
I16 = pa.int16()
I32 = pa.int32()
I64 = pa.int64()
LS = pa.list_(pa.string())

#: Insurance pools (险种): national codes 310 职工基本医疗保险, 390 城乡居民基本医疗保险.
INSURANCE_TYPES = ("employee", "resident")
INSURANCE_TYPE_LABELS = {"employee": "职工", "resident": "居民"}
#: Sex (GB/T 2261.1): 1 男, 2 女, 0 未知, 9 未说明.
SEXES = ("1", "2", "0", "9")
#: Admission route (入院途径): 1 急诊, 2 门诊, 3 其他医疗机构转入, 9 其他.
ADMISSION_ROUTES = ("1", "2", "3", "9")
#: Discharge method (离院方式): 1 医嘱离院, 2 医嘱转院, 3 医嘱转社区/乡镇卫生院, 4 非医嘱离院,
#: 5 死亡, 9 其他.
DISCHARGE_METHODS = ("1", "2", "3", "4", "5", "9")
#: Hospital level (医院等级).
HOSPITAL_LEVELS = ("tertiary", "secondary", "primary", "unrated")
HOSPITAL_LEVEL_LABELS = {
    "tertiary": "三级",
    "secondary": "二级",
    "primary": "一级",
    "unrated": "未定级",
}


def _fee(name: str, label: str, *aliases: str) -> Column:
    return Column(name, I64, label, required=False, aliases=aliases, unit="fen")


#: Fee categories of the national settlement list (住院收费票据/结算清单 费用分类).
FEE_COLUMNS: tuple[Column, ...] = (
    _fee("fee_bed", "床位费", "BED_FEE"),
    _fee("fee_consultation", "诊查费", "诊察费"),
    _fee("fee_examination", "检查费", "EXAM_FEE"),
    _fee("fee_laboratory", "化验费", "LAB_FEE"),
    _fee("fee_treatment", "治疗费", "TRT_FEE"),
    _fee("fee_surgery", "手术费", "OPRN_FEE"),
    _fee("fee_nursing", "护理费", "NURS_FEE"),
    _fee("fee_materials", "卫生材料费", "MATL_FEE"),
    _fee("fee_western_medicine", "西药费", "WM_FEE"),
    _fee("fee_herbal_pieces", "中药饮片费", "TCMHERB_FEE"),
    _fee("fee_chinese_patent_medicine", "中成药费", "TCMPAT_FEE"),
    _fee("fee_general_treatment", "一般诊疗费", "GNRL_DIAG_FEE"),
    _fee("fee_registration", "挂号费", "REG_FEE"),
    _fee("fee_other", "其他费", "其他费用", "OTH_FEE"),
)
FEE_NAMES: tuple[str, ...] = tuple(c.name for c in FEE_COLUMNS)

CASES = TableContract(
    name="cases",
    label="医保结算清单（住院病例）",
    key=("case_id",),
    columns=(
        Column("case_id", S, "结算清单号", aliases=("清单流水号", "SETL_ID", "MDTRT_ID", "病例号")),
        Column("hospital_id", S, "定点医疗机构代码", aliases=("医疗机构代码", "FIXMEDINS_CODE")),
        Column("patient_id", S, "人员编号", aliases=("个人编码", "参保人编号", "PSN_NO")),
        Column(
            "insurance_type",
            S,
            "险种类型",
            aliases=("险种", "INSUTYPE"),
            allowed=INSURANCE_TYPES,
            description="employee 职工 (310) / resident 居民 (390)",
        ),
        Column("sex", S, "性别", aliases=("GEND",), allowed=SEXES),
        Column("birth_date", D, "出生日期", required=False, aliases=("BRDY",)),
        Column("age", I16, "年龄", aliases=("年龄(岁)", "AGE"), description="周岁"),
        Column(
            "age_days",
            I32,
            "年龄(天)",
            required=False,
            aliases=("年龄（不足1周岁）", "不足1周岁年龄(天)", "NWB_AGE"),
            description="不足 1 周岁时的天数",
        ),
        Column(
            "newborn_birth_weight_g",
            I32,
            "新生儿出生体重(克)",
            required=False,
            aliases=("新生儿出生体重", "NWB_BIR_WT"),
        ),
        Column(
            "newborn_admit_weight_g",
            I32,
            "新生儿入院体重(克)",
            required=False,
            aliases=("新生儿入院体重", "NWB_ADM_WT"),
        ),
        Column("admit_date", D, "入院日期", aliases=("入院时间", "ADM_TIME", "ADM_DATE")),
        Column("discharge_date", D, "出院日期", aliases=("出院时间", "DSCG_DATE", "DSCG_TIME")),
        Column(
            "los_days", I32, "实际住院天数", required=False, aliases=("住院天数", "ACT_IPT_DAYS")
        ),
        Column(
            "admission_route",
            S,
            "入院途径",
            required=False,
            aliases=("ADM_WAY", "ADM_PATH"),
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
        Column("department", S, "出院科别", required=False, aliases=("科室", "DSCG_CATY")),
        Column("doctor_id", S, "主诊医师代码", required=False, aliases=("主诊医师", "CHFPDR_CODE")),
        Column("main_diagnosis", S, "主要诊断代码", aliases=("主诊断编码", "MAINDIAG_CODE")),
        Column(
            "other_diagnoses",
            LS,
            "其他诊断代码",
            aliases=("次要诊断代码", "其他诊断编码", "OTHDIAG_CODES"),
            description="列表；文本中以 | ; ， , 分隔",
        ),
        Column(
            "main_procedure",
            S,
            "主要手术及操作代码",
            required=False,
            aliases=("主手术操作编码", "主要手术操作代码", "MAIN_OPRN_CODE"),
        ),
        Column(
            "main_procedure_date",
            D,
            "主要手术及操作日期",
            required=False,
            aliases=("主要手术日期", "OPRN_OPRT_DATE"),
        ),
        Column(
            "other_procedures",
            LS,
            "其他手术及操作代码",
            aliases=("其他手术操作编码", "OTH_OPRN_CODES"),
        ),
        Column(
            "icu_days", I32, "重症监护天数", required=False, aliases=("ICU天数", "SCS_CUTD_DAYS")
        ),
        Column("total_cost", I64, "医疗总费用", aliases=("总费用", "MEDFEE_SUMAMT"), unit="fen"),
        *FEE_COLUMNS,
        Column("fund_paid", I64, "统筹基金支付", required=False, aliases=("HIFP_PAY",), unit="fen"),
        Column(
            "serious_illness_paid",
            I64,
            "大病保险支付",
            required=False,
            aliases=("HIFMI_PAY",),
            unit="fen",
        ),
        Column(
            "medical_aid_paid",
            I64,
            "医疗救助支付",
            required=False,
            aliases=("MAF_PAY",),
            unit="fen",
        ),
        Column(
            "personal_copay", I64, "个人自付", required=False, aliases=("PSN_SELFPAY",), unit="fen"
        ),
        Column(
            "personal_selfpay", I64, "个人自费", required=False, aliases=("PSN_OWNPAY",), unit="fen"
        ),
        Column(
            "out_of_list_cost",
            I64,
            "目录外费用",
            required=False,
            aliases=("全自费金额", "FULAMT_OWNPAY_AMT"),
            unit="fen",
        ),
        Column(
            "settle_month", S, "结算月份", aliases=("结算年月", "SETL_MONTH"), description="YYYY-MM"
        ),
    ),
)

HOSPITALS = TableContract(
    name="hospitals",
    label="定点医疗机构",
    key=("hospital_id",),
    columns=(
        Column("hospital_id", S, "定点医疗机构代码", aliases=("医疗机构代码", "FIXMEDINS_CODE")),
        Column("name", S, "医疗机构名称", aliases=("机构名称", "FIXMEDINS_NAME")),
        Column("level", S, "医院等级", aliases=("等级",), allowed=HOSPITAL_LEVELS),
        Column("county", S, "所属区县", aliases=("区县",)),
        Column("community_id", S, "医共体编码", required=False, aliases=("医共体",)),
        Column(
            "ownership",
            S,
            "所有制",
            required=False,
            allowed=("public", "private"),
            description="public 公立 / private 民营",
        ),
        Column("beds", I32, "核定床位数", required=False),
        Column(
            "bonus_coefficient",
            pa.decimal128(8, 4),
            "加成系数",
            required=False,
            description="政策文件外单独核定的加成系数（与政策中的加成叠加）",
        ),
    ),
)

#: Ground truth of injected anomalies in synthetic data (never present in real data).
LABELS = TableContract(
    name="labels",
    label="合成数据注入标签",
    key=("case_id", "label"),
    columns=(
        Column("case_id", S, "结算清单号"),
        Column("label", S, "注入类型"),
        Column("detail", S, "说明"),
    ),
)

#: Rows an import step refused, with why (input = accepted + quarantined).
QUARANTINE = TableContract(
    name="quarantine",
    label="隔离行",
    columns=(
        Column("file", S, "文件"),
        Column("row_number", I64, "原始行号"),
        Column("field", S, "字段", required=False),
        Column("value", S, "值", required=False),
        Column("reason", S, "原因"),
        Column("original", S, "原始内容"),
    ),
)

#: One quality-control finding: a rule that a case's settlement list breaks (质控问题).
#: case_id is null when the row had no case id (such rows share their findings).
QC_FINDINGS = TableContract(
    name="qc_findings",
    label="质控问题明细",
    columns=(
        Column("case_id", S, "结算清单号", required=False),
        Column("hospital_id", S, "定点医疗机构代码", required=False),
        Column("rule_id", S, "规则编号"),
        Column("level", S, "问题级别", allowed=("error", "warning", "info")),
        Column("field", S, "字段"),
        Column("value", S, "值", required=False),
        Column("message", S, "问题说明"),
    ),
)

#: Each case's quality-control outcome (质控结果): passed = no blocking finding.
QC_CASE_STATUS = TableContract(
    name="qc_case_status",
    label="病例质控结果",
    key=("case_id",),
    columns=(
        Column("case_id", S, "结算清单号", required=False),
        Column("hospital_id", S, "定点医疗机构代码", required=False),
        Column("passed", pa.bool_(), "质控通过"),
        Column("blocking", pa.bool_(), "存在阻断问题"),
        Column("error_count", I64, "错误数"),
        Column("warning_count", I64, "警告数"),
        Column("info_count", I64, "提示数"),
    ),
)

SCORE = pa.decimal128(18, 4)
COEFFICIENT = pa.decimal128(10, 4)
POINT_VALUE = pa.decimal128(18, 6)
B = pa.bool_()
F64 = pa.float64()

#: Procedure types (手术操作类别), least to most intensive; "conservative" = no procedure.
PROCEDURE_TYPES = ("diagnostic", "therapeutic", "interventional", "surgery")

#: Insurance-edition diagnosis table (医保版 ICD-10). Hierarchy columns derive from the code.
DIAGNOSIS_CODES = TableContract(
    name="diagnosis_codes",
    label="医保版疾病诊断代码",
    key=("code",),
    columns=(
        Column("code", S, "诊断代码", aliases=("疾病代码", "编码", "代码")),
        Column("name", S, "诊断名称", aliases=("疾病名称", "名称")),
        Column("chapter", S, "章", description="e.g. 'X' or 'A00-B99'"),
        Column("block", S, "节", description="e.g. 'K35-K38'"),
        Column("category", S, "类目", description="3 chars, e.g. 'K35'"),
        Column("subcategory", S, "亚目", description="5 chars, e.g. 'K35.8'"),
        Column("valid_as_main", B, "可作主要诊断", aliases=("是否可作主诊断",)),
        Column(
            "sex_restriction",
            S,
            "性别限制",
            required=False,
            allowed=("1", "2"),
            description="1 仅男性 / 2 仅女性 / 空 不限",
        ),
        Column("age_min_days", I32, "最小年龄(天)", required=False),
        Column("age_max_days", I32, "最大年龄(天)", required=False),
    ),
)

#: Insurance-edition procedure table (医保版 ICD-9-CM-3).
PROCEDURE_CODES = TableContract(
    name="procedure_codes",
    label="医保版手术操作代码",
    key=("code",),
    columns=(
        Column("code", S, "手术操作代码", aliases=("编码", "代码")),
        Column("name", S, "手术操作名称", aliases=("名称",)),
        Column("category", S, "类目", description="e.g. '47.0'"),
        Column("subcategory", S, "亚目", description="e.g. '47.01'"),
        Column(
            "procedure_type",
            S,
            "手术操作类别",
            allowed=PROCEDURE_TYPES,
            aliases=("操作类别", "类别"),
            description="diagnostic 诊断性操作 / therapeutic 治疗性操作 / interventional 介入治疗 / surgery 手术",
        ),
        Column("sex_restriction", S, "性别限制", required=False, allowed=("1", "2")),
    ),
)

#: Clinical edition → insurance edition mapping (国临版 → 医保版).
CODE_MAPPING = TableContract(
    name="code_mapping",
    label="国临版与医保版映射",
    key=("kind", "clinical_code"),
    columns=(
        Column("kind", S, "类型", allowed=("diagnosis", "procedure")),
        Column("clinical_code", S, "国临版代码", aliases=("临床版代码",)),
        Column("insurance_code", S, "医保版代码"),
    ),
)

#: GROUP_TYPES of the directory; grouping adds "fallback" and "unmatched" for cases.
GROUP_TYPES = ("core", "comprehensive", "basic", "special")
CASE_GROUP_TYPES = (*GROUP_TYPES, "fallback", "unmatched")
GROUP_TYPE_LABELS = {
    "core": "核心病种",
    "comprehensive": "综合病种",
    "basic": "基层病种",
    "special": "特殊病种",
    "fallback": "保底组",
    "unmatched": "未入组",
}

#: Where a directory group comes from: the national frame, or added locally (新增病种).
DIRECTORY_ORIGINS = ("national", "local")
DIRECTORY_ORIGIN_LABELS = {"national": "国家目录", "local": "新增病种"}
#: Directory kinds the regions report (核心/综合/基层/特殊/新增): a local group counts as 新增
#: whatever its type, the others by type.
DIRECTORY_KIND_LABELS = {
    "core": "核心病种",
    "comprehensive": "综合病种",
    "basic": "基层病种",
    "special": "特殊病种",
    "new": "新增病种",
}

#: The disease-group directory (病种目录库), built from history or loaded.
DIRECTORY = TableContract(
    name="directory",
    label="病种目录库",
    key=("group_code",),
    columns=(
        Column("group_code", S, "病种编码"),
        Column("group_name", S, "病种名称"),
        Column("group_type", S, "病种类型", allowed=GROUP_TYPES),
        Column("diagnosis_key", S, "诊断键", description="亚目/类目/节/章 (e.g. 'K35.8')"),
        Column(
            "procedure_key",
            S,
            "手术操作键",
            description="'' 保守治疗; 'A+B' 全部; 'A/B' 任一; 综合病种为操作类别",
        ),
        Column(
            "procedure_match",
            S,
            "操作匹配方式",
            allowed=("none", "all", "any", "prefix", "type"),
        ),
        Column("score", SCORE, "病种分值"),
        Column("mean_cost_fen", I64, "次均费用(全市)", unit="fen"),
        Column("mean_cost_tertiary_fen", I64, "次均费用(三级)", required=False, unit="fen"),
        Column("mean_cost_secondary_fen", I64, "次均费用(二级)", required=False, unit="fen"),
        Column("mean_cost_primary_fen", I64, "次均费用(一级)", required=False, unit="fen"),
        Column("mean_cost_unrated_fen", I64, "次均费用(未定级)", required=False, unit="fen"),
        Column("case_count", I64, "病例数", required=False),
        Column("cv", F64, "变异系数", required=False),
        Column("score_per_day", SCORE, "床日分值", required=False),
        # 新增病种 (groups added locally beyond the national frame) and their provenance
        Column(
            "origin",
            S,
            "病种来源",
            required=False,
            allowed=DIRECTORY_ORIGINS,
            description="national 国家目录（含本地测算）; local 新增病种",
        ),
        Column("added_by", S, "新增单位", required=False),
        Column("added_on", D, "新增日期", required=False),
        Column("added_basis", S, "新增依据", required=False, description="决定文件文号"),
    ),
)

#: One row per case after grouping (入组结果).
GROUPED = TableContract(
    name="grouped",
    label="入组结果",
    key=("case_id",),
    columns=(
        Column("case_id", S, "结算清单号"),
        Column("group_code", S, "病种编码", required=False),
        Column("group_type", S, "入组类型", allowed=CASE_GROUP_TYPES),
        Column("base_score", SCORE, "病种分值", required=False),
        Column("aux_coefficient", COEFFICIENT, "辅助目录系数", required=False),
        Column("match_step", S, "入组步骤"),
        Column("reason", S, "说明"),
    ),
)

DEVIATIONS = ("normal", "high", "low", "extreme", "special_review")
EXPLAIN_BODIES = (
    "normal",
    "high",
    "high_folded",
    "low",
    "low_base",
    "extreme_review",
    "extreme_review_folded",
    "extreme_cap",
    "extreme_cap_folded",
    "extreme_provisional",
    "bed_day",
    "fallback",
    "special_review",
)
EXPLAIN_TAILS = (
    "coef",
    "basic",
    "folded",
    "low_no_coef",
    "fallback",
    "review_settled",
    "review_case",
)
MEAN_SOURCE_KEYS = ("same_level", "regional", "regional_fallback", "score_times_factor")

#: One row per case after scoring (病例分值与金额).
SCORED = TableContract(
    name="scored",
    label="病例分值与金额",
    key=("case_id",),
    columns=(
        Column("case_id", S, "结算清单号"),
        Column("hospital_id", S, "定点医疗机构代码"),
        Column("pool", S, "险种", allowed=INSURANCE_TYPES),
        Column("group_code", S, "病种编码", required=False),
        Column("base_score", SCORE, "病种分值", required=False),
        Column("deviation", S, "费用偏差类型", allowed=DEVIATIONS),
        Column("case_score", SCORE, "病例分值"),
        Column("hospital_coefficient", COEFFICIENT, "医疗机构系数"),
        Column("settled_score", SCORE, "结算分值"),
        Column("point_value", POINT_VALUE, "点值", required=False),
        Column("dip_amount_fen", I64, "DIP 总金额", required=False, unit="fen"),
        Column("personal_share_fen", I64, "个人负担", unit="fen"),
        Column("fund_payable_fen", I64, "统筹基金应支付", required=False, unit="fen"),
        Column("ffs_fund_fen", I64, "按项目统筹支付", unit="fen"),
        # special payment rules applied (opendip.scoring.special), null when none
        Column("tcm_group", S, "中医优势病种", required=False),
        Column("new_tech", S, "新技术新项目", required=False),
        # The facts of the Chinese explanation (计算说明), typed; the sentence is rendered on
        # read from them (`opendip.scoring.explain.render`), as the single-case path does.
        Column("explain_body", S, "说明模板（计算公式）", allowed=EXPLAIN_BODIES),
        Column("explain_tail", S, "说明模板（系数）", allowed=EXPLAIN_TAILS),
        Column("review_rejected", B, "特例单议未通过"),
        Column("aux_coefficient", COEFFICIENT, "辅助系数"),
        Column("paid_base_score", SCORE, "计分所用基准分值", required=False),
        Column("rule_note", S, "特殊支付规则说明", required=False),
        Column("total_cost_fen", I64, "医疗总费用", unit="fen"),
        Column("mean_source", S, "参照均值来源", required=False, allowed=MEAN_SOURCE_KEYS),
        Column("mean_cost_fen", I64, "参照次均费用", required=False, unit="fen"),
        Column("cost_ratio", SCORE, "费用倍率", required=False),
        Column("low_multiple", S, "低倍率界值", required=False),
        Column("high_multiple", S, "高倍率界值", required=False),
        Column("extreme_multiple", S, "极端界值", required=False),
        Column("excess_share", S, "超出部分计分比例", required=False),
        Column("institution_coefficient", COEFFICIENT, "医疗机构系数（政策）", required=False),
        Column("score_per_day", SCORE, "床日分值", required=False),
        Column("los_days", I64, "住院天数", required=False),
        Column("fallback_fraction", S, "保底病组比例", required=False),
        Column("all_case_mean_fen", I64, "全部病例次均费用", required=False, unit="fen"),
        Column("base_points", S, "基准分值", required=False),
    ),
)

#: The SCORED columns shown to people as they are (Excel, pages); the other columns are the
#: explanation's facts, shown as the rendered sentence.
SCORED_SHOWN = (
    "case_id",
    "hospital_id",
    "pool",
    "group_code",
    "base_score",
    "deviation",
    "case_score",
    "hospital_coefficient",
    "settled_score",
    "point_value",
    "dip_amount_fen",
    "personal_share_fen",
    "fund_payable_fen",
    "ffs_fund_fen",
)

#: The Chinese explanation is shown from these SCORED columns (plus the money columns).
EXPLAIN_FACTS = (
    "explain_body",
    "explain_tail",
    "review_rejected",
    "group_code",
    "base_score",
    "paid_base_score",
    "rule_note",
    "aux_coefficient",
    "total_cost_fen",
    "mean_source",
    "mean_cost_fen",
    "cost_ratio",
    "low_multiple",
    "high_multiple",
    "extreme_multiple",
    "excess_share",
    "institution_coefficient",
    "case_score",
    "settled_score",
    "score_per_day",
    "los_days",
    "fallback_fraction",
    "all_case_mean_fen",
    "base_points",
    "point_value",
    "dip_amount_fen",
    "personal_share_fen",
    "fund_payable_fen",
)
