"""history: per-minute and per-hour serving roll-ups, process resource samples

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("errors_by_kind", sa.JSON(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("batches", sa.BigInteger(), nullable=False),
        sa.Column("batch_rows", sa.BigInteger(), nullable=False),
        sa.Column("in_flight_peak", sa.Integer(), nullable=False),
        sa.Column("latency", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("model", "deployment", "version", "start"),
    )
    op.create_index(f"ix_{name}_deployment", name, ["deployment", "version", "start"])
    op.create_index(f"ix_{name}_start", name, ["start"])


def upgrade() -> None:
    _rollup_table("monitoring_minutes")
    _rollup_table("monitoring_hours")
    op.create_table(
        "resource_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("rss_bytes", sa.BigInteger(), nullable=False),
        sa.Column("gpu_util", sa.Float(), nullable=True),
        sa.Column("gpu_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_resource_samples_subject", "resource_samples", ["kind", "subject", "at"])
    op.create_index("ix_resource_samples_at", "resource_samples", ["at"])


def downgrade() -> None:
    op.drop_index("ix_resource_samples_at", table_name="resource_samples")
    op.drop_index("ix_resource_samples_subject", table_name="resource_samples")
    op.drop_table("resource_samples")
    for name in ("monitoring_hours", "monitoring_minutes"):
        op.drop_index(f"ix_{name}_start", table_name=name)
        op.drop_index(f"ix_{name}_deployment", table_name=name)
        op.drop_table(name)
