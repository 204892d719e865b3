"""Glue between pages/API and the domain modules: scope of case data, pre-grouping."""

from __future__ import annotations

import datetime as dt
import importlib.util
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from opendip.policy.cache import PolicyCache, file_identity
from opendip.store import repositories as repo
from opendip.web.region import CaseFilters, RegionData
from opendip.web.security import NotFound, Viewer

_INDEX_LOCK = threading.RLock()


def module_ready(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def case_scope(viewer: Viewer, requested: str | None) -> str | None:
    """The hospital filter to apply: hospital users are always pinned to their own."""
    if viewer.role == "hospital":
        return viewer.user.hospital_id
    return requested or None


def scoped_filters(viewer: Viewer, filters: CaseFilters) -> CaseFilters:
    filters.hospital_id = case_scope(viewer, filters.hospital_id)
    return filters


def get_case(request: Any, s: Session, viewer: Viewer, case_id: str) -> dict[str, Any]:
    """A case visible to the viewer, else NotFound (404 for other hospitals' cases)."""
    region: RegionData = request.app.state.region
    uploads = repo.accepted_upload_files(s)
    if viewer.role == "expert":
        allowed = {c for a in repo.list_applications(s, viewer.actor) for c in a.case_ids}
        if case_id not in allowed:
            raise NotFound("未找到该病例")
        row = region.case(case_id, None, uploads)
    else:
        row = region.case(case_id, case_scope(viewer, None), uploads)
    if row is None:
        raise NotFound("未找到该病例")
    return row


def _policy_path(request: Any) -> Path:
    from opendip.policy import demo_policy_path

    settings = request.app.state.settings
    region: RegionData = request.app.state.region
    return Path(settings.policy_path or region.policy_path() or demo_policy_path())


def _policies(request: Any) -> PolicyCache:
    state = request.app.state
    cache = getattr(state, "policy_cache", None)
    if cache is None:
        with _INDEX_LOCK:
            cache = getattr(state, "policy_cache", None) or PolicyCache()
            state.policy_cache = cache
    return cache


def _policy_file(request: Any):
    """The region's policy file, parsed once per file version (see PolicyCache)."""
    return _policies(request).file(_policy_path(request))


@dataclass(frozen=True)
class _Grouping:
    index: Any
    #: group_code → directory row (the pre-grouping answer names the group)
    rows: dict[str, dict[str, Any]]


def _grouping(request: Any) -> _Grouping | None:
    """The single-case grouping index and directory rows, cached per directory file,
    policy file version and day (a new directory or policy is picked up on the next call)."""
    from opendip.codes import demo_code_tables
    from opendip.grouping import GroupingIndex

    region: RegionData = request.app.state.region
    path = region.directory_path(None)
    if path is None:
        return None
    state = request.app.state
    key = _grouping_key(request, path)
    cached = getattr(state, "grouping_index", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    today = key[2]
    policy_path = _policy_path(request)
    with _INDEX_LOCK:
        cached = getattr(state, "grouping_index", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        policy = _policies(request).at(policy_path, today)
        table = region.directory_table(None)
        index = GroupingIndex.build(table, policy, demo_code_tables())
        rows: dict[str, dict[str, Any]] = {}
        for row in table.to_pylist():
            rows.setdefault(row["group_code"], row)
        found = _Grouping(index, rows)
        state.grouping_index = (key, found)
        return found


def _grouping_key(request: Any, directory: Path) -> tuple[Any, ...]:
    return (file_identity(directory), file_identity(_policy_path(request)), dt.date.today())


def pregroup_is_quick(request: Any) -> bool:
    """True when pre-grouping needs no file read or index build (all cached), so the
    handler may answer on the event loop instead of a worker thread."""
    path = request.app.state.region.directory_path(None)
    cached = getattr(request.app.state, "grouping_index", None)
    try:
        return path is not None and cached is not None and cached[0] == _grouping_key(request, path)
    except OSError:
        return False


def grouping_index(request: Any):
    """The single-case grouping index for the current directory (cached per file)."""
    found = _grouping(request)
    return found.index if found else None


def explain_case(request: Any, case: dict[str, Any]) -> list[str]:
    """The single-case grouping explanation (identical result to the batch)."""
    if not module_ready("opendip.grouping"):
        return ["病例入组模块尚未启用"]
    index = grouping_index(request)
    if index is None:
        return ["区域目录中没有病种目录"]
    from opendip.grouping import group_case

    try:
        result = group_case(case, index)
    except Exception as exc:  # explanation is informative only
        return [f"无法生成入组说明：{exc}"]
    return list(result.explanation) or [result.reason]


def pregroup(request: Any, data: dict[str, Any], hospital: dict[str, Any] | None) -> dict[str, Any]:
    """Group (and score, when the module exists) one case entered by hand."""
    if not module_ready("opendip.grouping"):
        raise NotFound("病例入组模块尚未启用")
    from opendip.grouping import group_case

    grouping = _grouping(request)
    if grouping is None:
        raise NotFound("区域目录中没有病种目录，无法预分组")
    index = grouping.index
    today = data.get("discharge_date") or dt.date.today()
    los = int(data.get("los_days") or 1)
    cost_fen = int((Decimal(data["total_cost_yuan"]) * 100).to_integral_value())
    case = {
        "case_id": "预分组",
        "hospital_id": (hospital or {}).get("hospital_id", ""),
        "insurance_type": data.get("insurance_type", "employee"),
        "sex": data.get("sex", "1"),
        "age": int(data.get("age") or 0),
        "age_days": None,
        "newborn_birth_weight_g": None,
        "newborn_admit_weight_g": None,
        "admit_date": today - dt.timedelta(days=los),
        "discharge_date": today,
        "los_days": los,
        "discharge_method": data.get("discharge_method", "1"),
        "main_diagnosis": data["main_diagnosis"].strip().upper(),
        "other_diagnoses": [
            c.strip().upper() for c in data.get("other_diagnoses") or [] if c.strip()
        ],
        "main_procedure": (data.get("main_procedure") or "").strip() or None,
        "other_procedures": [c.strip() for c in data.get("other_procedures") or [] if c.strip()],
        "total_cost": cost_fen,
        "fund_paid": None,
        "personal_copay": 0,
        "personal_selfpay": 0,
        "settle_month": today.strftime("%Y-%m"),
        "department": "",
        "icu_days": 0,
    }
    g = group_case(case, index)
    drow = grouping.rows.get(g.group_code) if g.group_code else None
    name = drow.get("group_name") if drow else None
    out: dict[str, Any] = {
        "group_code": g.group_code,
        "group_name": name,
        "group_type": g.group_type,
        "base_score": g.base_score,
        "match_step": g.match_step,
        "reason": g.reason,
        "explanation": list(g.explanation) or [g.reason],
        "scoring_note": "",
    }
    if g.group_type == "unmatched":
        out["scoring_note"] = "未入组病例不按 DIP 计分（按项目付费）"
        return out
    if not module_ready("opendip.scoring.single"):
        out["scoring_note"] = "分值计算模块尚未启用：暂不能估算分值与金额"
        return out
    if hospital is None:
        out["scoring_note"] = "请选择医疗机构后估算分值与金额"
        return out
    try:
        from opendip.scoring.single import score_case
        from opendip.web.runs import budget_point_values

        policies = _policies(request)
        policy_path = _policy_path(request)
        policy = policies.at(policy_path, today)
        mean_fen = _all_case_mean(request)
        pv = policies.derived(
            policy_path,
            ("budget_point_values", today, mean_fen),
            lambda: budget_point_values(policy, mean_fen),
        )[case["insurance_type"]]
        row = score_case(
            case,
            g.as_row(),
            drow,
            hospital,
            policies.for_date(policy_path, case["discharge_date"]),
            point_value=pv,
            all_case_mean_fen=mean_fen,
        )
        out.update(
            deviation=row.get("deviation"),
            case_score=row.get("case_score"),
            settled_score=row.get("settled_score"),
            point_value=row.get("point_value", pv),
            estimated_amount_fen=row.get("dip_amount_fen"),
            scoring_note=row.get("explanation", ""),
        )
    except Exception as exc:  # scoring still in progress upstream: show why, never 500
        out["scoring_note"] = f"暂不能估算分值：{exc}"
    return out


def _all_case_mean(request: Any) -> int | None:
    try:
        return request.app.state.region.all_case_mean_fen()
    except (OSError, ValueError):
        return None
