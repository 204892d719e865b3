"""supervision_leads.adjustment: what a confirmed lead changes at the year's clearing

Revision ID: negotiation_3
Revises: negotiation_2
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "negotiation_3"
down_revision = "negotiation_2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("supervision_leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adjustment", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("supervision_leads", schema=None) as batch_op:
        batch_op.drop_column("adjustment")
