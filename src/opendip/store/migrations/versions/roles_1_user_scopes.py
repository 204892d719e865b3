"""users.county / department / doctor_id: scoped roles (县区经办, 科主任, 医师)

Revision ID: roles_1
Revises: hospital_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "roles_1"
down_revision = "hospital_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("county", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("department", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("doctor_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("doctor_id")
        batch_op.drop_column("department")
        batch_op.drop_column("county")
