"""Who may see which rows: the one place access to stored objects and case data is filtered.

A hospital user sees its own hospital's rows only; an expert sees the applications
assigned to it; the agency and administrators see the whole region. Callers that get
`None` back for an id must answer 404 (never 403), so ids of other hospitals' objects
cannot be probed.

Used by the store's repositories (`application_filter`, `upload_filter`) and by every web
route that reads case data, uploads or files an application (`case_scope`,
`requested_hospital` through `opendip.web.services`, and `hospital_scope` for uploads).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true

from opendip.store.models import Application, Upload
from opendip.workflow import Actor

REGION_ROLES = frozenset({"admin", "agency"})


def is_region(actor: Actor) -> bool:
    return actor.role in REGION_ROLES


def application_filter(actor: Actor) -> ColumnElement[bool]:
    if is_region(actor):
        return true()
    if actor.role == "hospital" and actor.hospital_id:
        return Application.hospital_id == actor.hospital_id
    if actor.role == "expert":
        return Application.expert_id == actor.user_id
    return false()


def upload_filter(actor: Actor) -> ColumnElement[bool]:
    if is_region(actor):
        return true()
    if actor.role == "hospital" and actor.hospital_id:
        return Upload.hospital_id == actor.hospital_id
    return false()


class NoCaseAccess(PermissionError):
    """The role has no general access to case data (experts see assigned cases only)."""


def hospital_scope(actor: Actor) -> str | None:
    """The hospital a user is limited to (None: the whole region); raises for roles with
    no general case access."""
    if is_region(actor):
        return None
    if actor.role == "hospital" and actor.hospital_id:
        return actor.hospital_id
    raise NoCaseAccess("无权查看病例数据")


class OtherHospital(LookupError):
    """A hospital user named another hospital: answered as "not found" (404)."""


def case_scope(actor: Actor, requested: str | None) -> str | None:
    """The hospital filter for case data: a hospital user is pinned to its own hospital
    whatever it asks for; region roles get the hospital they ask for (None: whole region)."""
    own = hospital_scope(actor)
    return own if own is not None else (requested or None)


def requested_hospital(actor: Actor, requested: str | None) -> str | None:
    """Like `case_scope`, but a hospital user naming another hospital is refused
    (`OtherHospital`) instead of being silently shown its own."""
    own = hospital_scope(actor)
    if own is None:
        return requested or None
    if requested and requested != own:
        raise OtherHospital(requested)
    return own
