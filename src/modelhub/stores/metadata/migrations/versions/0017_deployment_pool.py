"""deployment pool: the shared model pool a deployment is placed on (NULL: its own replicas)

Revision ID: 0017
Revises: 0015 (0016 belongs to the hosts lane; the coordinator sets it on merge)
Create Date: 2026-12-07 22:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pool", sa.String(64), nullable=True))
        batch_op.create_index("ix_deployments_pool", ["pool"])


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_pool")
        batch_op.drop_column("pool")
