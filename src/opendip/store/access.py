"""Who may see which rows: the one place access to stored objects and case data is filtered.

Roles and their scopes (docs/platform.md, 角色与数据范围):

- 医保局管理员 / 医保局经办 (admin, agency): the whole region.
- 县区经办 (agency with a county): the hospitals of one county (区县) only; the county of a
  hospital is data (the `county` column of the region's hospital registry), resolved into
  `Actor.county_hospitals` when the user logs in. An unknown county has no hospitals.
- 卫健部门 / 财政部门 (health, finance): read-only; published results and reports, region
  aggregates, never case rows; every state-changing request is refused (403).
- 医院用户 (hospital): one hospital. Its sub-roles narrow the case data further: the DIP
  office (医保办, no sub-scope) sees the whole hospital; a department head (科主任,
  `department`) the cases discharged from that department; a doctor (医师, `doctor_id`) the
  cases whose attending doctor code (主诊医师代码) is theirs. Sub-roles see case data only
  (cases, 院端分析, 在院病例 and their downloads), not uploads or applications.
- 评审专家 (expert): the applications assigned to it and their cases.

Callers that get `None` (or an empty result) back for an id must answer 404 (never 403),
so ids of objects outside the scope cannot be probed.

Used by the store's repositories (`application_filter`, `upload_filter`, `lead_filter`,
`run_visible`), by the web security layer (`kind`, `is_readonly`) and by every web route
that reads case data, uploads or files an application (`case_scope`, `requested_hospital`
through `opendip.web.services`, `hospital_scope` for uploads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, true

from opendip.store.models import Application, Run, SupervisionLead, Upload
from opendip.workflow import Actor

REGION_ROLES = frozenset({"admin", "agency"})
READONLY_ROLES = frozenset({"health", "finance"})

#: The kinds of user the permission table (`opendip.web.security.PERMISSIONS`) knows.
KINDS = (
    "admin",
    "agency",
    "county",
    "hospital",
    "department",
    "doctor",
    "expert",
    "health",
    "finance",
)


def kind(actor: Actor) -> str:
    """The role with its scope: county agency users are "county", hospital sub-roles
    "department" or "doctor"."""
    if actor.role == "agency" and actor.county is not None:
        return "county"
    if actor.role == "hospital" and actor.doctor_id:
        return "doctor"
    if actor.role == "hospital" and actor.department:
        return "department"
    return actor.role


def is_region(actor: Actor) -> bool:
    """The whole region (not a county-level user)."""
    return actor.role in REGION_ROLES and actor.county is None


def is_readonly(actor: Actor) -> bool:
    return actor.role in READONLY_ROLES


def _county_filter(column: Any, actor: Actor) -> ColumnElement[bool]:
    hospitals = sorted(actor.county_hospitals or ())
    return column.in_(hospitals) if hospitals else false()


def _office(actor: Actor) -> bool:
    """A hospital user with the whole hospital in view (医保办)."""
    return actor.role == "hospital" and bool(actor.hospital_id) and not actor.sub_scoped


def application_filter(actor: Actor) -> ColumnElement[bool]:
    if is_region(actor):
        return true()
    if actor.role in REGION_ROLES:
        return _county_filter(Application.hospital_id, actor)
    if _office(actor):
        return Application.hospital_id == actor.hospital_id
    if actor.role == "expert":
        return Application.expert_id == actor.user_id
    return false()


def upload_filter(actor: Actor) -> ColumnElement[bool]:
    if is_region(actor):
        return true()
    if actor.role in REGION_ROLES:
        return _county_filter(Upload.hospital_id, actor)
    if _office(actor):
        return Upload.hospital_id == actor.hospital_id
    return false()


def lead_filter(actor: Actor) -> ColumnElement[bool]:
    """Supervision leads: the region's for region roles, the county's for county users."""
    if is_region(actor):
        return true()
    if actor.role in REGION_ROLES:
        return _county_filter(SupervisionLead.hospital_id, actor)
    return false()


def run_visible(actor: Actor, run: Run) -> bool:
    """Settlement runs are region-level: region roles see every run, the read-only
    departments the published ones only."""
    if is_region(actor):
        return True
    return is_readonly(actor) and run.status == "published"


class NoCaseAccess(PermissionError):
    """The role has no general access to case data (experts see assigned cases only)."""


def hospital_scope(actor: Actor) -> str | None:
    """The hospital an uploading user is limited to (None: the whole region); raises for
    users who may not import data for their scope (county users, sub-roles, read-only)."""
    if is_region(actor):
        return None
    if _office(actor):
        return actor.hospital_id
    if actor.role in REGION_ROLES or actor.role == "hospital":
        raise NoCaseAccess("该账户只能查看本范围的病例，不能导入数据")
    raise NoCaseAccess("无权查看病例数据")


class OtherHospital(LookupError):
    """A user named a hospital outside its scope: answered as "not found" (404)."""


@dataclass(frozen=True)
class CaseScope:
    """The case rows a user may see: all conditions hold together."""

    #: One hospital (a hospital user's own, or the one a region user asked for).
    hospital_id: str | None = None
    #: The hospitals of a county user's county (None: no county limit).
    hospitals: frozenset[str] | None = None
    #: Discharge department (科主任) and attending doctor code (医师).
    department: str | None = None
    doctor_id: str | None = None

    @property
    def whole_region(self) -> bool:
        return self == CaseScope()

    def allows(self, row: dict[str, Any]) -> bool:
        """Whether a case row (with hospital_id, department, doctor_id) is in scope."""
        hid = row.get("hospital_id")
        if self.hospital_id is not None and hid != self.hospital_id:
            return False
        if self.hospitals is not None and hid not in self.hospitals:
            return False
        if self.department is not None and row.get("department") != self.department:
            return False
        return self.doctor_id is None or row.get("doctor_id") == self.doctor_id

    def filter(self, table: Any) -> Any:
        """An Ibis table of cases (hospital_id, department, doctor_id) narrowed to the scope."""
        import ibis

        t = table
        if self.hospital_id is not None:
            t = t.filter(t.hospital_id == self.hospital_id)
        if self.hospitals is not None:
            t = (
                t.filter(t.hospital_id.isin(sorted(self.hospitals)))
                if self.hospitals
                else t.filter(ibis.literal(False))
            )
        if self.department is not None:
            t = t.filter(t.department == self.department)
        if self.doctor_id is not None:
            t = t.filter(t.doctor_id == self.doctor_id)
        return t


def case_scope(actor: Actor, requested: str | None) -> CaseScope:
    """The case filter for `actor`: a hospital user is pinned to its own hospital (and its
    department or own cases) whatever it asks for; a county user to its county's hospitals
    (asking for another county's hospital gives nothing); region roles get the hospital
    they ask for (None: the whole region). Roles without case access are refused."""
    requested = requested or None
    if is_region(actor):
        return CaseScope(hospital_id=requested)
    if actor.role in REGION_ROLES:
        return CaseScope(hospital_id=requested, hospitals=actor.county_hospitals or frozenset())
    if actor.role == "hospital" and actor.hospital_id:
        return CaseScope(
            hospital_id=actor.hospital_id,
            department=actor.department or None,
            doctor_id=actor.doctor_id or None,
        )
    raise NoCaseAccess("无权查看病例数据")


def dashboard_scope(actor: Actor) -> CaseScope:
    """Aggregates on the home page: the read-only departments see the region's (never rows)."""
    if is_readonly(actor):
        return CaseScope()
    return case_scope(actor, None)


def requested_hospital(actor: Actor, requested: str | None) -> str | None:
    """The one hospital a page is about: a hospital user's own; a county user's choice
    within its county; a region user's choice. Naming a hospital outside the scope is
    refused (`OtherHospital`) instead of being silently replaced."""
    requested = requested or None
    scope = case_scope(actor, None)
    if scope.hospital_id is not None:  # hospital users
        if requested and requested != scope.hospital_id:
            raise OtherHospital(requested)
        return scope.hospital_id
    if requested and scope.hospitals is not None and requested not in scope.hospitals:
        raise OtherHospital(requested)
    return requested
