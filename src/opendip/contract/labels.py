"""The one table of Chinese labels for the identifiers users would otherwise see.

Screens, reports and exports show `label(kind, value)`; identifiers stay English in code,
files and the API. A value without a label is shown as it is (codes, ids), and the page
test (tests/web/test_labels.py) fails when an English or snake_case word reaches a page.
"""

from __future__ import annotations

from opendip.contract.tables import (
    GROUP_TYPE_LABELS,
    HOSPITAL_LEVEL_LABELS,
    INSURANCE_TYPE_LABELS,
)

WORKFLOW_ACTIONS = {
    "submit": "提出申请",
    "comment": "意见",
    "attach": "上传附件",
    "accept": "受理",
    "refuse": "不予受理",
    "withdraw": "撤回申请",
    "assign": "组织专家评审",
    "reassign": "更换评审专家",
    "decide": "提交评审意见",
    "object": "对评审意见提出异议",
    "archive": "结案归档",
}

APPLICATION_STATES = {
    "submitted": "提出申请（待受理）",
    "accepted": "已受理（待组织评审）",
    "reviewing": "专家评审中",
    "feedback": "处理意见反馈",
    "archived": "已结案归档",
}
APPLICATION_OUTCOMES = {
    "refused": "不予受理",
    "withdrawn": "申请人撤回",
    "upheld": "全部支持",
    "partly_upheld": "部分支持",
    "rejected": "不予支持",
}
REVIEW_DECISIONS = {"accept": "通过", "reject": "不通过"}

LABELS: dict[str, dict[str, str]] = {
    "application_state": APPLICATION_STATES,
    "application_outcome": APPLICATION_OUTCOMES,
    "review_decision": REVIEW_DECISIONS,
    "deviation": {
        "normal": "正常",
        "high": "高倍率",
        "low": "低倍率",
        "extreme": "极端值",
        "special_review": "特例单议",
    },
    "pool": dict(INSURANCE_TYPE_LABELS),
    "group_type": dict(GROUP_TYPE_LABELS),
    "hospital_level": dict(HOSPITAL_LEVEL_LABELS),
    "procedure_type": {
        "conservative": "保守治疗",
        "diagnostic": "诊断性操作",
        "therapeutic": "治疗性操作",
        "surgery": "相关手术",
    },
    "lead_type": {
        "readmission": "分解住院/二次入院",
        "upcoding": "高套分值",
        "low_standard_admission": "低标准入院",
        "overlong_stay": "超长住院",
        "high_multiple_cluster": "高倍率病例聚集",
        "cost_shifting": "费用转嫁",
    },
    "severity": {"high": "高", "medium": "中", "low": "低"},
    "lead_status": {
        "open": "待分派",
        "assigned": "核查中",
        "closed": "已结案",
        "confirmed": "确认违规（清算时处理）",
    },
    "role": {
        "admin": "医保局管理员",
        "agency": "医保局经办",
        "hospital": "医院用户",
        "expert": "评审专家",
        "health": "卫健部门（只读）",
        "finance": "财政部门（只读）",
    },
    "run_kind": {"monthly": "月度预结算", "annual": "年终清算", "supervision": "智能监管"},
    "run_status": {
        "queued": "排队中",
        "running": "运行中",
        "succeeded": "已完成（待审核）",
        "failed": "失败",
        "approved": "已审核",
        "published": "已公示",
    },
    "workflow_action": WORKFLOW_ACTIONS,
    "point_value_formula": {
        "fund_plus_personal": "（统筹基金 + 个人负担）÷ 总分值",
        "fund_only": "统筹基金 ÷ 总分值",
        "fund_over_ratio": "统筹基金 ÷ 报销比例 ÷ 总分值",
    },
    "ffs_rule": {
        "keep_surplus": "结余留用",
        "pay_dip": "按DIP支付",
        "share_loss": "超支分担",
        "none": "未设结余留用/超支分担",
    },
    "result": {"surplus": "结余", "deficit": "超支", "balanced": "持平"},
    "object_type": {
        "run": "结算运行",
        "application": "申请",
        "lead": "监管线索",
        "user": "用户",
        "upload": "数据上传",
        "proposal": "目录调整意见",
        "report": "报告",
        "credit": "信用评价",
        "complaint": "投诉举报",
    },
    "audit_action": {
        "login": "登录",
        "logout": "退出",
        "login.throttled": "登录过于频繁被限制",
        "user.create": "创建用户",
        "user.update": "修改用户",
        "user.locked": "账户锁定",
        "run.start": "发起运行",
        "run.approve": "审核运行",
        "run.publish": "公示运行",
        "run.demo": "登记示范区域运行",
        "run.review_cap_override": "特例单议上限调整",
        "clearing.review_cap_overridden": "特例单议上限已调整",
        "upload.create": "上传数据",
        "upload.rejected": "上传被拒绝",
        "upload.case_collision": "上传病例与其他机构冲突",
        "report.refresh": "重新生成报告",
        "lead.assign": "分派线索",
        "lead.close": "线索结案",
        "demo.accounts": "创建示范账户",
        "proposal.create": "提出目录调整意见",
        "proposal.comment": "目录调整意见评论",
        "proposal.reply": "答复目录调整意见",
        "proposal.publish": "公布目录调整",
        "credit.rate": "信用评价",
        "credit.repair": "信用修复",
        "complaint.create": "登记投诉举报",
        **{f"application.{k}": f"申请：{v}" for k, v in WORKFLOW_ACTIONS.items()},
    },
    "audit_detail": {
        "kind": "类型",
        "period": "期间",
        "cases": "病例数",
        "file": "文件",
        "minutes": "锁定分钟",
        "assignee_id": "核查人编号",
        "username": "用户名",
        "users": "用户",
        "role": "角色",
        "active": "启用",
        "reason": "原因",
        "comment": "说明",
        "base_run": "基准运行",
        "expert_id": "评审专家编号",
        "outcome": "结果",
        "rows": "行数",
        "accepted": "接收",
        "quarantined": "隔离",
        "hospital_id": "医疗机构",
        "county": "所属区县",
        "department": "科室",
        "doctor_id": "主诊医师代码",
        "from": "原状态",
        "to": "新状态",
        "decisions": "评审结论",
        "action": "操作",
        "policy_version": "政策版本",
        "origin": "来源",
    },
}
#: Values an audit entry's details may hold (run kinds, application kinds, roles).
LABELS["audit_value"] = {
    **LABELS["run_kind"],
    **LABELS["role"],
    **APPLICATION_STATES,
    **APPLICATION_OUTCOMES,
    **REVIEW_DECISIONS,
    "special_review": "特例单议",
    "dispute": "争议处理",
    "policy": "政策异议",
    "True": "是",
    "False": "否",
}


def label(kind: str, value: object) -> str:
    """The Chinese label of `value` in table `kind` (the value itself when unlabelled;
    "—" for none)."""
    if value is None:
        return "—"
    return LABELS.get(kind, {}).get(str(value), str(value))


__all__ = ["LABELS", "WORKFLOW_ACTIONS", "label"]
