"""pipelines record who wrote their current version

A pipeline is one row whose spec each save replaces; `created_by` names who made
it first (its owner) and `updated_by` who wrote the version it holds now, so a run
started from it can be traced to the author of the spec it ran. Dataset versions
are rows of their own and already record their author in `created_by`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_by", sa.String(length=128), nullable=True))
    op.execute("UPDATE pipelines SET updated_by = created_by")
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.alter_column("updated_by", existing_type=sa.String(length=128), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.drop_column("updated_by")
