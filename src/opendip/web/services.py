"""Glue between pages/API and the domain modules: scope of case data, pre-grouping."""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from opendip.contract.ids import try_normalise_id
from opendip.contract.labels import label
from opendip.policy.cache import PolicyCache, file_identity
from opendip.store import access
from opendip.store import repositories as repo
from opendip.web.region import CaseFilters, RegionData
from opendip.web.security import Forbidden, NotFound, Viewer
from opendip.web.settings import platform_today

_INDEX_LOCK = threading.RLock()
log = logging.getLogger("opendip.web")


def module_ready(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def case_scope(viewer: Viewer, requested: str | None) -> access.CaseScope:
    """The case rows to show (`opendip.store.access.case_scope`): hospital users are
    always pinned to their own hospital (department, own cases), county users to their
    county; roles without case access are refused."""
    try:
        return access.case_scope(viewer.actor, requested)
    except access.NoCaseAccess as exc:
        raise Forbidden(str(exc)) from exc


def dashboard_scope(viewer: Viewer) -> access.CaseScope:
    """The cases the home page counts (read-only departments: the region's aggregates)."""
    try:
        return access.dashboard_scope(viewer.actor)
    except access.NoCaseAccess as exc:
        raise Forbidden(str(exc)) from exc


def requested_hospital(viewer: Viewer, requested: str | None) -> str | None:
    """The hospital a page is about: a hospital user's own, a county user's within its
    county; another one is 404."""
    try:
        return access.requested_hospital(viewer.actor, requested)
    except access.OtherHospital as exc:
        raise NotFound("未找到该医疗机构") from exc
    except access.NoCaseAccess as exc:
        raise Forbidden(str(exc)) from exc


def scoped_filters(viewer: Viewer, filters: CaseFilters) -> CaseFilters:
    filters.scope = case_scope(viewer, filters.hospital_id)
    filters.hospital_id = filters.scope.hospital_id
    return filters


def hospital_choices(request: Any, viewer: Viewer) -> list[dict[str, Any]]:
    """The hospitals a page's selector offers: none for hospital users (their own is
    implied), a county user's county, else the region's."""
    region: RegionData = request.app.state.region
    actor = viewer.actor
    if actor.role == "hospital":
        return []
    return [h for h in region.hospitals() if actor.in_county(h["hospital_id"])]


def check_scope(region: RegionData, county: str | None, hospital_id: str | None) -> None:
    """A new user's county must be one of the hospital registry's (else nobody is in it)."""
    if county and county.strip() not in region.counties():
        known = "、".join(region.counties()) or "无"
        raise repo.StoreRuleError(f"区县 {county} 不在医疗机构名录中（已有：{known}）")


def get_case(request: Any, s: Session, viewer: Viewer, case_id: str) -> dict[str, Any]:
    """A case visible to the viewer, else NotFound (404 for cases outside the scope)."""
    region: RegionData = request.app.state.region
    normal = try_normalise_id(case_id, "case_id")
    if normal is None:  # cannot exist (opendip.contract.ids)
        raise NotFound("未找到该病例")
    case_id = normal
    uploads = repo.accepted_upload_files(s)
    if viewer.role == "expert":
        allowed = {c for a in repo.list_applications(s, viewer.actor) for c in a.case_ids}
        if case_id not in allowed:
            raise NotFound("未找到该病例")
        row = region.case(case_id, access.CaseScope(), uploads)
    else:
        row = region.case(case_id, case_scope(viewer, None), uploads)
    if row is None:
        raise NotFound("未找到该病例")
    return row


def _request_memo(request: Any, name: str, compute: Any) -> Any:
    """A value looked up once per request (kept in the ASGI scope): the region's files are
    checked on every request — so an agency's new policy or directory is seen on the next
    one — but not several times within one (issue 16 §4)."""
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return compute()
    key = f"opendip.{name}"
    if key not in scope:
        scope[key] = compute()
    return scope[key]


def _policy_path(request: Any) -> Path:
    from opendip.policy import demo_policy_path

    def find() -> Path:
        settings = request.app.state.settings
        region: RegionData = request.app.state.region
        return Path(settings.policy_path or region.policy_path() or demo_policy_path())

    return _request_memo(request, "policy_path", find)


def _directory_path(request: Any) -> Path | None:
    """The region's current directory file (once per request)."""
    return _request_memo(
        request, "directory_path", lambda: request.app.state.region.directory_path(None)
    )


def _policies(request: Any) -> PolicyCache:
    state = request.app.state
    cache = getattr(state, "policy_cache", None)
    if cache is None:
        with _INDEX_LOCK:
            cache = getattr(state, "policy_cache", None) or PolicyCache()
            state.policy_cache = cache
    return cache


def _policy_file(request: Any):
    """The region's policy file, parsed and validated once per file version (PolicyCache;
    an edited or replaced file is read again on the next call)."""
    path = _policy_path(request)
    identity = _request_memo(request, "policy_identity", lambda: file_identity(path))
    return _policies(request).file(path, identity)


def _grouping_key(request: Any, directory: Path) -> tuple[Any, ...]:
    return _request_memo(
        request,
        f"grouping_key:{directory}",
        lambda: (
            file_identity(directory),
            _request_memo(request, "policy_identity", lambda: file_identity(_policy_path(request))),
            platform_today(request),
        ),
    )


def pregroup_is_quick(request: Any) -> bool:
    """True when pre-grouping needs no file read or index build (all cached), so the
    handler may answer on the event loop instead of a worker thread."""
    path = _directory_path(request)
    cached = getattr(request.app.state, "grouping_index", None)
    try:
        return path is not None and cached is not None and cached[0] == _grouping_key(request, path)
    except OSError:
        return False


def grouping_index(request: Any):
    """The single-case grouping index, cached per directory file, policy file version and
    day (a new directory or policy is picked up on the next call)."""
    from opendip.codes import demo_code_tables
    from opendip.grouping import GroupingIndex

    region: RegionData = request.app.state.region
    path = _directory_path(request)
    if path is None:
        return None
    state = request.app.state
    key = _grouping_key(request, path)
    cached = getattr(state, "grouping_index", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    with _INDEX_LOCK:
        cached = getattr(state, "grouping_index", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        policy = _policies(request).at(_policy_path(request), key[2])
        index = GroupingIndex.build(region.directory_table(None, path), policy, demo_code_tables())
        state.grouping_index = (key, index)
        return index


def warm_pregroup(app: Any) -> None:
    """Build what pre-grouping keeps in memory (policy, directory, grouping index, code
    tables) before the first request (`opendip serve`); a failure is left for the first
    request to report."""
    request = SimpleNamespace(app=app)
    try:
        if not module_ready("opendip.grouping") or grouping_index(request) is None:
            return
        _policy_file(request)
        _directory_rows(request)
        code_spelling(request)
        code_names(request)
    except Exception:
        log.warning("pre-grouping caches not built at startup", exc_info=True)


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


def by_item_note(request: Any, case: dict[str, Any]) -> str:
    """Why a case is settled by item as a new technology (新技术新项目 in its transition
    period, the shared rule of opendip.scoring.special), or "" when it is not."""
    from opendip.scoring import ScoringError, special
    from opendip.scoring.single import policy_for

    when = case.get("discharge_date")
    if not isinstance(when, dt.date):
        return ""
    try:
        pol = policy_for(_policy_file(request), when)
    except ScoringError:  # discharged outside the policy's periods: no rule applies
        return ""
    rule = special.new_tech_match(case, special.special_rules(pol).by_item)
    return special.by_item_reason(rule) if rule else ""


def code_spelling(request: Any) -> dict[str, str]:
    """Upper-cased code → the code as the region's code tables spell it (`K35.800x001`
    keeps its lower-case x), diagnoses and procedures; cached."""
    state = request.app.state
    cached = getattr(state, "code_spelling", None)
    if cached is None:
        from opendip.codes import demo_code_tables

        codes = demo_code_tables()
        cached = {}
        for table in (codes.procedures, codes.diagnoses):
            for code in table.column("code").to_pylist():
                cached.setdefault(code.upper(), code)
        state.code_spelling = cached
    return cached


def code_names(request: Any) -> dict[str, str]:
    """Code → Chinese name from the region's code tables (diagnoses and procedures)."""
    state = request.app.state
    cached = getattr(state, "code_names", None)
    if cached is None:
        from opendip.codes import demo_code_tables

        codes = demo_code_tables()
        cached = {}
        for table in (codes.procedures, codes.diagnoses):
            cached.update(
                zip(table.column("code").to_pylist(), table.column("name").to_pylist(), strict=True)
            )
        state.code_names = cached
    return cached


def normalise_code(request: Any, code: str | None) -> str | None:
    """A code typed by hand, as the code tables spell it (case-insensitive match); unknown
    codes are kept as typed (trimmed), so grouping says they are unknown."""
    text = (code or "").strip()
    if not text:
        return None
    return code_spelling(request).get(text.upper(), text)


POINT_VALUE_BASES = {"budget": "当月预算点值", "published": "最近一次已公示结算的点值"}


def pregroup_point_value(
    request: Any, policy_file: Any, pool: str, when: dt.date, basis: str
) -> tuple[Decimal | None, str, str]:
    """(point value, basis used, Chinese description) for an estimate: the month's budget
    point value (预算点值, as the monthly pre-settlement pays), or the latest published run's
    point value for the pool (结算点值 of an annual clearing); the other one when the asked-for
    one is not available."""
    from opendip.store.repositories import published_runs

    def budget() -> tuple[Decimal, str] | None:
        from opendip.scoring import ScoringError
        from opendip.settlement.pointvalue import budget_point_value

        try:
            pol = policy_file.at(when.replace(day=1))
            value = budget_point_value(pol, pool, None)
        except (ScoringError, ValueError):
            return None
        pool_label = label("pool", pool)
        return value, f"{when:%Y-%m} {pool_label}预算点值（政策规定）"

    def published() -> tuple[Decimal, str] | None:
        with request.app.state.store.session() as s:
            for run in published_runs(s):
                if run.kind not in ("annual", "monthly"):
                    continue
                value = ((run.manifest or {}).get("point_values") or {}).get(pool)
                if value is None:
                    continue
                what = "结算点值" if run.kind == "annual" else "预算点值"
                return (
                    Decimal(str(value)),
                    f"第 {run.id} 号运行（{run.period} {run.kind_label}，已公示）的{what}",
                )
        return None

    order = ("published", "budget") if basis == "published" else ("budget", "published")
    for b in order:
        found = budget() if b == "budget" else published()
        if found is not None:
            return found[0], b, found[1]
    return None, basis, "政策未给出预算点值，且尚无已公示的结算：无法估算金额"


def _directory_rows(request: Any) -> dict[str, dict[str, Any]]:
    """Group code → directory row of the current directory (once per request)."""
    return _request_memo(request, "directory_rows", lambda: _directory_rows_now(request))


def _directory_rows_now(request: Any) -> dict[str, dict[str, Any]]:
    region: RegionData = request.app.state.region
    path = _directory_path(request)
    table = region.directory_table(None, path) if path is not None else None
    if table is None:
        return {}
    state = request.app.state
    key = id(table)
    cached = getattr(state, "directory_rows", None)
    if cached is None or cached[0] != key:
        cached = (key, {r["group_code"]: r for r in table.to_pylist()})
        state.directory_rows = cached
    return cached[1]


def pregroup(request: Any, data: dict[str, Any], hospital: dict[str, Any] | None) -> dict[str, Any]:
    """Group one case entered by hand and, at a hospital, score it and estimate its DIP
    amount with the same rule code as the batch (`group_case`, `score_case`); list the
    diagnosis's candidate groups with the procedures that lead to each (a coder's what-if)."""
    if not module_ready("opendip.grouping"):
        raise NotFound("病例入组模块尚未启用")
    from opendip.grouping import group_case

    index = grouping_index(request)
    if index is None:
        raise NotFound("区域目录中没有病种目录，无法预分组")
    today = data.get("discharge_date") or platform_today(request)
    los = int(data.get("los_days") or 1)
    cost_fen = int((Decimal(data["total_cost_yuan"]) * 100).to_integral_value())
    main = normalise_code(request, data["main_diagnosis"]) or ""
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
        "main_diagnosis": main,
        "other_diagnoses": [
            c for c in (normalise_code(request, d) for d in data.get("other_diagnoses") or []) if c
        ],
        "main_procedure": normalise_code(request, data.get("main_procedure")),
        "other_procedures": [
            c for c in (normalise_code(request, p) for p in data.get("other_procedures") or []) if c
        ],
        "total_cost": cost_fen,
        # Unknown before settlement: the estimate is the DIP amount; the fund's share
        # (DIP amount − personal share) is then the whole amount.
        "fund_paid": 0,
        "personal_copay": 0,
        "personal_selfpay": 0,
        "settle_month": today.strftime("%Y-%m"),
        "department": "",
        "icu_days": 0,
    }
    g = group_case(case, index)
    rows = _directory_rows(request)
    drow = rows.get(g.group_code) if g.group_code else None
    names = code_names(request)
    out: dict[str, Any] = {
        "main_diagnosis": main,
        "diagnosis_name": names.get(main),
        "group_code": g.group_code,
        "group_name": (drow or {}).get("group_name"),
        "group_type": g.group_type,
        "base_score": g.base_score,
        "match_step": g.match_step,
        "reason": g.reason,
        "explanation": list(g.explanation) or [g.reason],
        "scoring_note": "",
        "point_value_basis": None,
        "point_value_source": "",
        "candidates": [],
    }
    scorer = _scorer(request, case, hospital, data.get("point_value_basis") or "budget")
    if scorer is not None:
        out["point_value_basis"] = scorer.basis
        out["point_value_source"] = scorer.source
    out["candidates"] = _candidates(index, case, g, rows, names, scorer)
    if g.group_type == "unmatched":
        out["scoring_note"] = "未入组病例不按 DIP 计分（按项目付费）"
        return out
    if not module_ready("opendip.scoring.single"):
        out["scoring_note"] = "分值计算模块尚未启用：暂不能估算分值与金额"
        return out
    if hospital is None or scorer is None:
        out["scoring_note"] = "请选择医疗机构后估算分值与金额"
        return out
    scored = scorer.score(g.as_row(), drow)
    row = scored.row
    if row is None:
        if scored.by_item_code is not None:  # 新技术新项目 in its transition period
            out["settled_by_item"] = True
            out["new_technology_code"] = scored.by_item_code
            out["scoring_note"] = scored.error
        else:
            out["scoring_note"] = f"暂不能估算分值：{scored.error}"
        return out
    out.update(
        deviation=row.get("deviation"),
        case_score=row.get("case_score"),
        settled_score=row.get("settled_score"),
        point_value=row.get("point_value"),
        estimated_amount_fen=row.get("dip_amount_fen"),
        scoring_note=row.get("explanation", ""),
    )
    if row.get("point_value") is None:
        out["scoring_note"] += f"（{scorer.source}）"
    return out


@dataclass(frozen=True)
class Scored:
    """One scoring of an entered case: the scored row, or why not (`error`, Chinese);
    `by_item_code` is the new technology (新技术新项目) whose transition period settles the
    case by item instead of DIP (then `error` is the batch's not_dip reason)."""

    row: dict[str, Any] | None
    error: str = ""
    by_item_code: str | None = None


class _Scorer:
    """score_case for one entered case at one hospital with one point value."""

    def __init__(self, case, hospital, policy_file, point_value, basis, source, mean_fen, rows):
        self.case, self.hospital, self.policy_file = case, hospital, policy_file
        self.point_value, self.basis, self.source = point_value, basis, source
        self.mean_fen = mean_fen
        #: directory rows by group code (western groups of 中西医同病同价)
        self.rows = rows

    def score(
        self, grouped: dict[str, Any], drow: dict[str, Any] | None, explain: bool = True
    ) -> Scored:
        from opendip.scoring import ScoringError
        from opendip.scoring.single import ByItemCase, score_case

        try:
            row = score_case(
                self.case,
                grouped,
                drow,
                self.hospital,
                self.policy_file,
                point_value=self.point_value,
                all_case_mean_fen=self.mean_fen,
                directory_rows=self.rows,
                explain=explain,
            )
        except ByItemCase as exc:  # 新技术新项目 in its transition period: paid by item
            return Scored(None, exc.reason, exc.code)
        except ScoringError as exc:
            return Scored(None, str(exc))
        return Scored(row)


def _scorer(
    request: Any, case: dict[str, Any], hospital: dict[str, Any] | None, basis: str
) -> _Scorer | None:
    if hospital is None or not module_ready("opendip.scoring.single"):
        return None
    policy_file = _policy_file(request)
    pv, used, source = pregroup_point_value(
        request, policy_file, case["insurance_type"], case["discharge_date"], basis
    )
    return _Scorer(
        case,
        hospital,
        policy_file,
        pv,
        used,
        source,
        _all_case_mean(request),
        _directory_rows(request),
    )


def _candidates(
    index: Any,
    case: dict[str, Any],
    g: Any,
    rows: dict[str, dict[str, Any]],
    names: dict[str, str],
    scorer: _Scorer | None,
) -> list[dict[str, Any]]:
    """Every core/basic group of the diagnosis key and the comprehensive group the case
    falls to without them: score, estimated payment at this hospital (same rule code), and
    the procedures that lead there."""
    from opendip.grouping.single import _aux

    if not case["main_diagnosis"] or case["main_diagnosis"] not in index.valid_as_main:
        return []
    aux = _aux(case, index.policy, index.valid_as_main)
    out = []
    for row in index.core.get(index.dx_key(case["main_diagnosis"]), []):
        procs = [{"code": p, "name": names.get(p) or ""} for p in row.procs]
        grouped = {
            "case_id": case["case_id"],
            "group_code": row.group_code,
            "group_type": row.group_type,
            "base_score": row.score,
            "aux_coefficient": aux if row.group_type == "core" else Decimal("1.0000"),
        }
        out.append(_candidate(grouped, rows, procs, row.match, g, scorer))
    comprehensive = _comprehensive(index, case)
    if comprehensive is not None:
        code, score, how = comprehensive
        grouped = {
            "case_id": case["case_id"],
            "group_code": code,
            "group_type": "comprehensive",
            "base_score": score,
            "aux_coefficient": Decimal("1.0000"),
        }
        out.append(_candidate(grouped, rows, [], how, g, scorer))
    return out


def _candidate(grouped, rows, procs, match, g, scorer) -> dict[str, Any]:
    drow = rows.get(grouped["group_code"]) or {}
    listed = "、".join(f"{p['code']} {p['name']}".strip() for p in procs)
    if match == "none":
        how = "无计入分组的手术操作（保守治疗）"
    elif match in MATCH_TEXT and procs:
        how = MATCH_TEXT[match].format(listed=listed)
    else:
        how = match
    item = {
        "group_code": grouped["group_code"],
        "group_name": drow.get("group_name"),
        "group_type": grouped["group_type"],
        "score": grouped["base_score"],
        "procedures": procs,
        "how": how,
        "current": grouped["group_code"] == g.group_code,
        "deviation": None,
        "settled_score": None,
        "estimated_amount_fen": None,
    }
    if scorer is not None:
        # only the figures are shown for a candidate: no explanation sentence rendered
        row = scorer.score(grouped, drow or None, explain=False).row
        if row is not None:
            item.update(
                deviation=row["deviation"],
                settled_score=row["settled_score"],
                estimated_amount_fen=row["dip_amount_fen"],
            )
    return item


MATCH_TEXT = {
    "all": "同时有以下手术操作：{listed}",
    "any": "有以下任一手术操作：{listed}",
    "prefix": "有以下编码开头的手术操作：{listed}",
}


def _comprehensive(index: Any, case: dict[str, Any]) -> tuple[str, Decimal, str] | None:
    """The comprehensive group the case reaches when no core group takes it."""
    from opendip.codes import diagnosis_block, diagnosis_category, diagnosis_chapter
    from opendip.directory.keys import TYPE_LABEL
    from opendip.grouping.batch import LEVEL_LABEL

    main = case["main_diagnosis"]
    proc_type = index.proc_type(index.procedures(case))
    for lv in index.policy.directory.comprehensive.levels:
        key = {
            "category": diagnosis_category(main),
            "block": diagnosis_block(main),
            "chapter": diagnosis_chapter(main),
        }[lv]
        hit = index.comprehensive.get((key, proc_type))
        if hit:
            how = (
                f"核心病种均不匹配时：综合病种（{LEVEL_LABEL[lv]} {key}，{TYPE_LABEL[proc_type]}）"
            )
            return hit[0], hit[1], how
    return None


def _all_case_mean(request: Any) -> int | None:
    try:
        return request.app.state.region.all_case_mean_fen()
    except (OSError, ValueError):
        return None
