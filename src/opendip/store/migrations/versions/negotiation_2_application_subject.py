"""applications.subject: what a 政策异议 (an application about no case) concerns

Revision ID: negotiation_2
Revises: negotiation_1
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "negotiation_2"
down_revision = "negotiation_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("subject")
