"""credit_ratings, credit_repairs, complaints: 信用评价, 信用修复, 投诉举报

Revision ID: credit_1
Revises: roles_1
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "credit_1"
down_revision = "roles_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_ratings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("doctor_id", sa.String(64), nullable=False),
        sa.Column("score", sa.Numeric(10, 4), nullable=False),
        sa.Column("grade", sa.String(8), nullable=False),
        sa.Column("repaired_grade", sa.String(8), nullable=True),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("rated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("period", "subject", "hospital_id", "doctor_id"),
    )
    op.create_index("ix_credit_ratings_period", "credit_ratings", ["period"])
    op.create_index("ix_credit_ratings_hospital_id", "credit_ratings", ["hospital_id"])
    op.create_table(
        "credit_repairs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "rating_id",
            sa.Integer(),
            sa.ForeignKey("credit_ratings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("remediation", sa.Text(), nullable=False),
        sa.Column("grade_before", sa.String(8), nullable=False),
        sa.Column("grade_after", sa.String(8), nullable=False),
        sa.Column("recorded_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_credit_repairs_rating_id", "credit_repairs", ["rating_id"])
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("substantiated", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_complaints_hospital_id", "complaints", ["hospital_id"])


def downgrade() -> None:
    op.drop_table("complaints")
    op.drop_table("credit_repairs")
    op.drop_table("credit_ratings")
