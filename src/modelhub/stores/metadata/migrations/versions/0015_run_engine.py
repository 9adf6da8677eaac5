"""run engine: the engine a run asks for, and which one (local, ray) ran its newest attempt

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engine", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("requested_engine", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("requested_engine")
        batch_op.drop_column("engine")
