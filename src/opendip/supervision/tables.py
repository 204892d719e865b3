"""The supervision outputs: leads (线索) and monthly indicators (指标)."""

from __future__ import annotations

import pyarrow as pa

from opendip.contract.columns import Column, TableContract
from opendip.contract.labels import LABELS

S = pa.string()
I32 = pa.int32()
I64 = pa.int64()
F64 = pa.float64()
VALUE = pa.decimal128(24, 6)

#: Lead types in the order they are described (docs/supervision.md), with Chinese labels.
LEAD_TYPES: dict[str, str] = LABELS["lead_type"]
#: Short prefix of each type's lead ids.
LEAD_PREFIX: dict[str, str] = {
    "readmission": "RA",
    "upcoding": "UC",
    "low_standard_admission": "LS",
    "overlong_stay": "OL",
    "high_multiple_cluster": "HM",
    "cost_shifting": "CS",
}
SEVERITIES = ("high", "medium", "low")
SEVERITY_LABELS = LABELS["severity"]

LEADS = TableContract(
    name="leads",
    label="监管线索",
    key=("lead_id",),
    columns=(
        Column(
            "lead_id", S, "线索编号", description="由类型与病例/机构/病种等自然键生成，重复运行不变"
        ),
        Column("lead_type", S, "线索类型", allowed=tuple(LEAD_TYPES)),
        Column("type_label", S, "类型名称"),
        Column("hospital_id", S, "定点医疗机构代码"),
        Column("department", S, "科室", required=False),
        Column("doctor_id", S, "医师代码", required=False),
        Column("case_ids", pa.list_(S), "涉及病例"),
        Column("case_count", I32, "病例数"),
        Column(
            "score", F64, "线索强度", description="类型内排序用；各类型含义见 docs/supervision.md"
        ),
        Column("severity", S, "严重程度", allowed=SEVERITIES),
        Column("impact_fen", I64, "涉及金额", unit="fen", description="估计涉及的费用"),
        Column("rank_in_type", I32, "类型内排名"),
        Column("rank_overall", I32, "总排名", description="按涉及金额、强度排序"),
        Column("evidence", S, "证据"),
        Column("status", S, "状态", description="open 待核查"),
    ),
)

#: Indicators: (name, Chinese label, unit) — unit 'fen', 'share', 'days', 'cases', 'ratio'.
INDICATOR_DEFS: tuple[tuple[str, str, str], ...] = (
    ("cases", "出院病例数", "cases"),
    ("total_cost", "医疗总费用", "fen"),
    ("cost_per_case", "次均费用", "fen"),
    ("alos", "平均住院日", "days"),
    ("selfpay_share", "个人自费占比", "share"),
    ("out_of_list_share", "目录外费用占比", "share"),
    ("tcm_fee_share", "中医药费用占比", "share"),
    ("readmission_rate", "二次入院率", "share"),
    ("cmi", "CMI", "ratio"),
    ("high_multiple_share", "高倍率病例占比", "share"),
    ("low_multiple_share", "低倍率病例占比", "share"),
    ("grouping_rate", "入组率", "share"),
)
INDICATOR_LABELS = {name: label for name, label, _ in INDICATOR_DEFS}
INDICATOR_UNITS = {name: unit for name, _, unit in INDICATOR_DEFS}

INDICATORS = TableContract(
    name="indicators",
    label="月度监管指标",
    key=("scope", "hospital_id", "month", "indicator"),
    columns=(
        Column(
            "scope",
            S,
            "范围",
            allowed=("hospital", "region"),
            description="hospital 机构 / region 全区域",
        ),
        Column("hospital_id", S, "定点医疗机构代码", description="全区域为 '*'"),
        Column("level", S, "医院等级", required=False),
        Column("month", S, "月份", description="YYYY-MM"),
        Column("indicator", S, "指标"),
        Column("indicator_label", S, "指标名称"),
        Column(
            "value", VALUE, "值", required=False, description="金额为元（精确到分）；占比为 0–1"
        ),
        Column("case_count", I64, "病例数"),
        Column("prev_month_value", VALUE, "上月值", required=False),
        Column("last_year_value", VALUE, "去年同月值", required=False),
        Column(
            "mom_change", F64, "环比变化", required=False, description="相对变化 (值/上月值 − 1)"
        ),
        Column(
            "yoy_change",
            F64,
            "同比变化",
            required=False,
            description="相对变化 (值/去年同月值 − 1)",
        ),
        Column("own_z", F64, "较自身趋势稳健z值", required=False),
        Column("peer_z", F64, "较同级机构稳健z值", required=False),
        Column("anomaly", pa.bool_(), "异常"),
        Column("anomaly_reason", S, "异常说明", required=False),
    ),
)
