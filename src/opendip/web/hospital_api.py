"""The hospital side (issue 19): API keys for hospital systems, cases pushed through
`POST /api/v1/cases` (in stay or at discharge) and the 在院病例 monitor built on them.

A pushed case is answered with the single-case engine the platform already has: QC by
`opendip.qc.single.CaseChecker` and grouping/scoring/estimate by `services.pregroup` (the
same rule code as the batch); the in-stay thresholds come from
`opendip.scoring.single.cost_thresholds` (the rules `score_case` applies).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import secrets
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendip.contract.ids import InvalidIdError, normalise_id
from opendip.store.models import ApiKey, PushedCase, utcnow
from opendip.web.settings import platform_today

KEY_PREFIX = "odk_"
STATUS_LABELS = {"in_stay": "在院", "discharged": "已出院"}

#: Flags of an in-stay case (事中监控), Chinese labels.
FLAG_LABELS = {
    "near_high": "接近高倍率",
    "over_high": "已超高倍率",
    "likely_low": "可能低倍率",
    "surgical_no_procedure": "外科诊断未编码手术",
    "qc_blocking": "缺少质控必填项",
    "over_mean_stay": "超过平均住院日",
    "unmatched": "未能入组",
}


# -- keys --------------------------------------------------------------------------------------


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_key(
    s: Session, hospital_id: str, name: str, created_by: int | None
) -> tuple[ApiKey, str]:
    """A new key for `hospital_id`; the secret is returned once and only its hash stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        hospital_id=hospital_id,
        name=name,
        prefix=secret[:12],
        key_hash=hash_key(secret),
        created_by=created_by,
    )
    s.add(key)
    s.flush()
    return key, secret


def find_key(s: Session, secret: str) -> ApiKey | None:
    """The active key for `secret`, else None (unknown or revoked)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if key is None or key.revoked_at is not None:
        return None
    return key


def list_keys(s: Session) -> list[ApiKey]:
    return list(s.scalars(select(ApiKey).order_by(ApiKey.id.desc())).all())


class RateLimiter:
    """At most `limit` calls per key within `window` seconds (sliding, per process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._lock = threading.Lock()
        self._calls: dict[int, collections.deque[float]] = {}

    def allow(self, key_id: int) -> tuple[bool, int]:
        """(allowed, seconds to wait when not)."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key_id, collections.deque())
            while calls and now - calls[0] >= self.window:
                calls.popleft()
            if len(calls) >= self.limit:
                return False, max(1, int(self.window - (now - calls[0])) + 1)
            calls.append(now)
            return True, 0


# -- the pushed case ---------------------------------------------------------------------------


class ApiCaseIn(BaseModel):
    """一例推送的病例（在院：截至目前的诊断与费用；出院：结算清单）。"""

    case_id: str = Field(description="结算清单号（本院病例号），同一病例重复推送即更新")
    status: Literal["in_stay", "discharged"] = Field(
        description="in_stay 在院（部分信息）；discharged 已出院"
    )
    admit_date: dt.date = Field(description="入院日期 YYYY-MM-DD")
    discharge_date: dt.date | None = Field(default=None, description="出院日期（出院病例必填）")
    insurance_type: Literal["employee", "resident"] = Field(
        default="employee", description="险种：employee 职工，resident 居民"
    )
    sex: Literal["1", "2", "0", "9"] = Field(default="1", description="性别代码")
    age: int = Field(default=50, ge=0, le=150, description="年龄（岁）")
    department: str = Field(default="", max_length=100, description="科室")
    doctor: str = Field(default="", max_length=100, description="主治医师（姓名，用于筛选）")
    doctor_id: str | None = Field(default=None, max_length=64, description="主诊医师代码")
    patient_id: str | None = Field(default=None, max_length=64, description="人员编号")
    birth_date: dt.date | None = Field(default=None, description="出生日期")
    admission_route: str | None = Field(default=None, max_length=8, description="入院途径代码")
    main_diagnosis: str | None = Field(
        default=None, max_length=32, description="主要诊断编码（出院病例必填）"
    )
    other_diagnoses: list[str] = Field(default_factory=list, max_length=50, description="其他诊断")
    main_procedure: str | None = Field(default=None, max_length=32, description="主要手术操作")
    other_procedures: list[str] = Field(
        default_factory=list, max_length=50, description="其他手术操作"
    )
    total_cost_yuan: Decimal = Field(
        ge=0, le=Decimal("100000000"), decimal_places=2, description="医疗总费用（元，截至目前）"
    )
    discharge_method: Literal["1", "2", "3", "4", "5", "9"] = Field(
        default="1", description="离院方式代码"
    )

    @field_validator("case_id")
    @classmethod
    def _case_id(cls, v: str) -> str:
        try:
            return normalise_id(v, "case_id")
        except InvalidIdError as exc:
            raise ValueError(exc.reason) from exc


FIELD_LABELS = {
    "case_id": "结算清单号",
    "status": "病例状态",
    "admit_date": "入院日期",
    "discharge_date": "出院日期",
    "insurance_type": "险种",
    "sex": "性别",
    "age": "年龄",
    "department": "科室",
    "doctor": "主治医师",
    "doctor_id": "主诊医师代码",
    "patient_id": "人员编号",
    "birth_date": "出生日期",
    "admission_route": "入院途径",
    "main_diagnosis": "主要诊断",
    "other_diagnoses": "其他诊断",
    "main_procedure": "主要手术操作",
    "other_procedures": "其他手术操作",
    "total_cost_yuan": "医疗总费用",
    "discharge_method": "离院方式",
}

_ERROR_TEXT = {
    "missing": "缺少必填项",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "string_type": "须为文本",
    "string_too_long": "内容过长",
    "too_long": "项数过多",
    "list_type": "须为列表",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "literal_error": "取值不在允许范围内",
    "decimal_parsing": "须为数字",
    "decimal_type": "须为数字",
    "decimal_max_places": "最多两位小数",
    "date_parsing": "须为日期 YYYY-MM-DD",
    "date_from_datetime_parsing": "须为日期 YYYY-MM-DD",
    "date_type": "须为日期 YYYY-MM-DD",
    "extra_forbidden": "不是可识别的字段",
    "model_type": "须为 JSON 对象",
    "dict_type": "须为 JSON 对象",
}


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as [{field, message}] in Chinese (field = the input's key)."""
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        field = ".".join(loc) or "病例"
        label = FIELD_LABELS.get(loc[0], loc[0]) if loc else "病例"
        if err.get("type") == "value_error":
            text = str(err.get("ctx", {}).get("error", "")) or "格式不正确"
        else:
            text = _ERROR_TEXT.get(err.get("type", ""), "格式不正确")
        out.append({"field": field, "message": f"{label}：{text}"})
    return out


def semantic_errors(case: ApiCaseIn, today: dt.date) -> list[dict[str, str]]:
    errors = []
    if case.status == "discharged":
        if case.discharge_date is None:
            errors.append({"field": "discharge_date", "message": "出院日期：出院病例必填"})
        if not (case.main_diagnosis or "").strip():
            errors.append({"field": "main_diagnosis", "message": "主要诊断：出院病例必填"})
    elif case.discharge_date is not None:
        errors.append({"field": "discharge_date", "message": "出院日期：在院病例不应填写"})
    if case.discharge_date is not None and case.discharge_date < case.admit_date:
        errors.append({"field": "discharge_date", "message": "出院日期：早于入院日期"})
    if case.admit_date > today:
        errors.append({"field": "admit_date", "message": "入院日期：晚于今天"})
    return errors


def _estimate_data(case: ApiCaseIn, today: dt.date) -> dict[str, Any]:
    """The case in the shape `services.pregroup` takes (an in-stay case as of today)."""
    end = case.discharge_date or today
    return {
        "insurance_type": case.insurance_type,
        "sex": case.sex,
        "age": case.age,
        "discharge_date": end,
        "los_days": max((end - case.admit_date).days, 1),
        "main_diagnosis": case.main_diagnosis or "",
        "other_diagnoses": case.other_diagnoses,
        "main_procedure": case.main_procedure,
        "other_procedures": case.other_procedures,
        "total_cost_yuan": case.total_cost_yuan,
        "discharge_method": case.discharge_method,
        "point_value_basis": "budget",
    }


def _contract_case(case: ApiCaseIn, hospital_id: str, today: dt.date) -> dict[str, Any]:
    """The case as a CASES-contract dict for single-case QC (unknown fields null)."""
    from opendip.contract.tables import CASES

    row: dict[str, Any] = dict.fromkeys(CASES.names)
    end = case.discharge_date
    row.update(
        case_id=case.case_id,
        hospital_id=hospital_id,
        insurance_type=case.insurance_type,
        sex=case.sex,
        age=case.age,
        admit_date=case.admit_date,
        discharge_date=end,
        los_days=(end - case.admit_date).days if end else None,
        discharge_method=case.discharge_method if end else None,
        department=case.department or None,
        doctor_id=case.doctor_id or None,
        patient_id=case.patient_id or None,
        birth_date=case.birth_date,
        admission_route=case.admission_route or None,
        main_diagnosis=case.main_diagnosis or None,
        other_diagnoses=case.other_diagnoses,
        main_procedure=case.main_procedure,
        other_procedures=case.other_procedures,
        total_cost=int((case.total_cost_yuan * 100).to_integral_value()),
        settle_month=end.strftime("%Y-%m") if end else None,
    )
    return row


def _checker(request: Any):
    """The single-case QC checker of the region's policy, cached per policy file version."""
    from opendip.codes import demo_code_tables
    from opendip.qc import CaseChecker, rules_for_policy
    from opendip.web.services import _grouping_key, _policies, _policy_path

    state = request.app.state
    path = _policy_path(request)
    directory = request.app.state.region.directory_path(None)
    key = _grouping_key(request, directory) if directory is not None else (str(path),)
    cached = getattr(state, "qc_checker", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    policy = _policies(request).at(path, platform_today(request))
    checker = CaseChecker(demo_code_tables(), rules_for_policy(policy, path), policy)
    state.qc_checker = (key, checker)
    return checker


def evaluate(request: Any, case: ApiCaseIn, hospital: dict[str, Any]) -> dict[str, Any]:
    """QC findings, group, score, deviation, estimated payment and explanation of one pushed
    case (JSON-ready), plus the in-stay measures (thresholds, mean stay, flags)."""
    from opendip.qc.rules import SumEquals
    from opendip.web.services import _directory_rows, _policy_file, pregroup

    today = platform_today(request)
    findings = []
    try:
        checker = _checker(request)
        # While in stay the fee breakdown and discharge fields are not known yet: their
        # findings (sum rules, discharge-only fields) do not count.
        sums = {r.id for r in checker.rules.rules if isinstance(r.check, SumEquals)}
        for f in checker.check(_contract_case(case, hospital["hospital_id"], today)):
            if case.status == "in_stay" and (f.field in IN_STAY_NOT_YET or f.rule_id in sums):
                continue
            findings.append(
                {
                    "rule_id": f.rule_id,
                    "level": f.level,
                    "level_label": f.level_label,
                    "field": f.field,
                    "message": f.message,
                }
            )
    except Exception as exc:  # QC must never turn a push into a 500
        findings.append(
            {
                "rule_id": "qc_unavailable",
                "level": "warning",
                "level_label": "提示",
                "field": "",
                "message": f"质控未能完成：{exc}",
            }
        )
    data = _estimate_data(case, today)
    est: dict[str, Any]
    if data["main_diagnosis"]:
        est = pregroup(request, data, hospital)
    else:
        est = {
            "group_code": None,
            "group_name": None,
            "group_type": "unmatched",
            "explanation": ["尚未填写主要诊断：暂不能入组"],
            "scoring_note": "尚未填写主要诊断",
        }
    cost_fen = int((case.total_cost_yuan * 100).to_integral_value())
    out: dict[str, Any] = {
        "qc_findings": findings,
        "qc_blocking": sum(1 for f in findings if f["level"] == "error"),
        "main_diagnosis": est.get("main_diagnosis"),
        "group_code": est.get("group_code"),
        "group_name": est.get("group_name"),
        "group_type": est.get("group_type"),
        "base_score": _s(est.get("base_score")),
        "deviation": est.get("deviation"),
        "case_score": _s(est.get("case_score")),
        "settled_score": _s(est.get("settled_score")),
        "point_value": _s(est.get("point_value")),
        "point_value_source": est.get("point_value_source", ""),
        "estimated_amount_fen": est.get("estimated_amount_fen"),
        "explanation": list(est.get("explanation") or []),
        "scoring_note": est.get("scoring_note", ""),
        "total_cost_fen": cost_fen,
        "los_days": data["los_days"],
        "thresholds": None,
        "mean_los_days": None,
        "flags": [],
    }
    drow = _directory_rows(request).get(est.get("group_code") or "")
    if est.get("group_code") and est.get("group_type") not in (None, "unmatched"):
        from opendip.scoring import ScoringError
        from opendip.scoring.single import cost_thresholds

        grouped = {"group_type": est["group_type"], "base_score": est.get("base_score")}
        try:
            th = cost_thresholds(
                {"discharge_date": data["discharge_date"], "insurance_type": case.insurance_type},
                grouped,
                drow,
                hospital,
                _policy_file(request),
                all_case_mean_fen=request.app.state.region.all_case_mean_fen(),
            )
        except (ScoringError, ValueError):
            th = None
        if th is not None:
            out["thresholds"] = {
                "mean_fen": th["mean_fen"],
                "low_fen": th["low_fen"],
                "high_fen": th["high_fen"],
                "low_multiple": str(th["low_multiple"]),
                "high_multiple": str(th["high_multiple"]),
                "mean_source": th["mean_source"],
            }
        mean_los = request.app.state.region.group_mean_los().get(est["group_code"])
        out["mean_los_days"] = str(mean_los) if mean_los is not None else None
    out["flags"] = flags(request, case, out)
    return out


#: Fields only known at discharge: their QC findings do not count while the case is in stay.
IN_STAY_NOT_YET = frozenset(
    {"discharge_date", "los_days", "discharge_method", "settle_month", "fund_paid",
     "personal_copay", "personal_selfpay"}
)  # fmt: skip


def flags(request: Any, case: ApiCaseIn, out: dict[str, Any]) -> list[str]:
    """The in-stay flags (keys of FLAG_LABELS); the "near" share is policy
    (`monitoring.near_high_share`)."""
    from opendip.web.services import _policy_file

    got = []
    th = out.get("thresholds")
    cost = out["total_cost_fen"]
    if out.get("group_type") == "unmatched":
        got.append("unmatched")
    if th:
        share = near_high_share(_policy_file(request), case, platform_today(request))
        if cost > th["high_fen"]:
            got.append("over_high")
        elif cost * 10000 >= th["high_fen"] * int(share * 10000):
            got.append("near_high")
        if (case.status == "in_stay" and cost < th["low_fen"]) or (
            case.status == "discharged" and out.get("deviation") == "low"
        ):
            got.append("likely_low")
    if (
        (case.main_diagnosis or "")
        and not case.main_procedure
        and (out.get("group_type") == "core")
        and _surgical(request, case.main_diagnosis)
    ):
        got.append("surgical_no_procedure")
    if out.get("qc_blocking"):
        got.append("qc_blocking")
    mean_los = out.get("mean_los_days")
    if mean_los is not None and Decimal(out["los_days"]) > Decimal(mean_los):
        got.append("over_mean_stay")
    return got


def near_high_share(policy_file: Any, case: ApiCaseIn, today: dt.date) -> Decimal:
    pol = policy_file.at(case.discharge_date or today)
    return Decimal(pol.monitoring.near_high_share)


def _surgical(request: Any, main: str) -> bool:
    """True when the diagnosis's every directory group requires a procedure (a surgical
    diagnosis: no conservative-treatment group in the directory)."""
    from opendip.web.services import grouping_index

    index = grouping_index(request)
    if index is None or main not in index.valid_as_main:
        return False
    rows = index.core.get(index.dx_key(main), [])
    return bool(rows) and all(r.match != "none" for r in rows)


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


# -- push --------------------------------------------------------------------------------------


class PushError(Exception):
    pass


def push_cases(request: Any, s: Session, key: ApiKey, raw_cases: list[Any]) -> list[dict[str, Any]]:
    """Validate, identify, evaluate and store each pushed case; one answer per input, in
    order: {index, case_id, accepted, version, errors, result}."""
    from opendip.store import repositories as repo

    region = request.app.state.region
    hospital = region.hospital(key.hospital_id)
    today = platform_today(request)
    answers: list[dict[str, Any]] = []
    parsed: list[tuple[int, ApiCaseIn]] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_cases):
        answer: dict[str, Any] = {
            "index": i,
            "case_id": raw.get("case_id") if isinstance(raw, dict) else None,
            "accepted": False,
            "version": None,
            "errors": [],
            "result": None,
        }
        answers.append(answer)
        if not isinstance(raw, dict):
            answer["errors"] = [{"field": "", "message": "病例：须为 JSON 对象"}]
            continue
        try:
            case = ApiCaseIn.model_validate(raw)
        except ValidationError as exc:
            answer["errors"] = field_errors(exc)
            continue
        answer["case_id"] = case.case_id
        errors = semantic_errors(case, today)
        if case.case_id in seen:
            errors.append({"field": "case_id", "message": "结算清单号：同一批次中重复"})
        seen.add(case.case_id)
        if hospital is None:
            errors.append({"field": "", "message": f"未找到医疗机构 {key.hospital_id}"})
        if errors:
            answer["errors"] = errors
            continue
        parsed.append((i, case))
    if not parsed:
        return answers
    ids = [c.case_id for _, c in parsed]
    stored = {
        p.case_id: p for p in s.scalars(select(PushedCase).where(PushedCase.case_id.in_(ids)))
    }
    owners = region.case_hospitals(ids, repo.accepted_upload_files(s))
    collisions = []
    for i, case in parsed:
        answer = answers[i]
        owner = stored[case.case_id].hospital_id if case.case_id in stored else None
        owner = owner or owners.get(case.case_id)
        if owner is not None and owner != key.hospital_id:
            answer["errors"] = [
                {
                    "field": "case_id",
                    "message": f"结算清单号 {case.case_id} 已由其他定点医疗机构提交，"
                    "不能由本机构推送或修改",
                }
            ]
            collisions.append(case.case_id)
            continue
        try:
            result = evaluate(request, case, hospital)
        except (InvalidOperation, ValueError) as exc:
            answer["errors"] = [{"field": "", "message": f"病例无法计算：{exc}"}]
            continue
        payload = case.model_dump(mode="json")
        row = stored.get(case.case_id)
        if row is None:
            row = PushedCase(case_id=case.case_id, hospital_id=key.hospital_id, version=1)
            s.add(row)
            stored[case.case_id] = row
        else:
            row.version = (row.version or 1) + 1
        row.status = case.status
        row.department = case.department
        row.doctor = case.doctor
        row.payload = payload
        row.result = result
        row.api_key_id = key.id
        row.updated_at = utcnow()
        answer.update(accepted=True, version=row.version, result=result)
    if collisions:
        repo.audit(
            s,
            None,
            "api.case_collision",
            "api_key",
            key.id,
            {"hospital_id": key.hospital_id, "cases": collisions},
        )
    s.flush()
    return answers


def pushed_cases(s: Session, hospital_id: str, status: str | None = None) -> list[PushedCase]:
    stmt = select(PushedCase).where(PushedCase.hospital_id == hospital_id)
    if status:
        stmt = stmt.where(PushedCase.status == status)
    return list(s.scalars(stmt.order_by(PushedCase.updated_at.desc())).all())


def pushed_case(s: Session, hospital_id: str, case_id: str) -> PushedCase | None:
    """The hospital's pushed case, else None (another hospital's case is not found)."""
    row = s.scalar(select(PushedCase).where(PushedCase.case_id == case_id))
    if row is None or row.hospital_id != hospital_id:
        return None
    return row
