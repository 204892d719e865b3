"""Who may see which rows: the one place access to stored objects is filtered.

A hospital user sees its own hospital's rows only; an expert sees the applications
assigned to it; the agency and administrators see the whole region. Callers that get
`None` back for an id must answer 404 (never 403), so ids of other hospitals' objects
cannot be probed.
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
