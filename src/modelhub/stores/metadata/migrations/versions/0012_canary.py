"""canary decisions: what the automated canary analysis decided, with its tests

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-07 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("stable_version", sa.Integer(), nullable=False),
        sa.Column("canary_version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("verdicts", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment", "started_at", name="uq_canary_decisions_canary"),
    )
    with op.batch_alter_table("canary_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_canary_decisions_deployment", ["deployment", "decided_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("canary_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_canary_decisions_deployment")
    op.drop_table("canary_decisions")
