"""Operational store (SQLAlchemy 2 + Alembic): users, sessions, runs, uploads,
special-review and dispute applications, supervision leads, audit log."""

from opendip.store.db import MIGRATIONS_DIR, Store, StoreError, make_engine, migrate, sqlite_url
from opendip.store.models import (
    ROLE_LABELS,
    ROLES,
    Application,
    ApplicationEvent,
    Attachment,
    AuditEntry,
    Base,
    Decision,
    LoginSession,
    Run,
    SupervisionLead,
    Upload,
    User,
    utcnow,
)

__all__ = [
    "MIGRATIONS_DIR",
    "ROLES",
    "ROLE_LABELS",
    "Application",
    "ApplicationEvent",
    "Attachment",
    "AuditEntry",
    "Base",
    "Decision",
    "LoginSession",
    "Run",
    "Store",
    "StoreError",
    "SupervisionLead",
    "Upload",
    "User",
    "make_engine",
    "migrate",
    "sqlite_url",
    "utcnow",
]
