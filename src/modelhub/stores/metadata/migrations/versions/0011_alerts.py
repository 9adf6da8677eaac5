"""alerts: one alert engine (rules, lifecycle, acknowledgement, webhook deliveries)

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-07 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ALERT_COLUMNS = (
    sa.Column("rule_id", sa.Integer(), nullable=True),
    sa.Column("labels", sa.JSON(), nullable=True),
    sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("clearing_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("notified", sa.String(length=16), nullable=True),
    sa.Column("webhooks", sa.JSON(), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        for column in ALERT_COLUMNS:
            batch_op.add_column(column)
    # Alerts fired before this revision were never notified: mark them told, so that
    # an upgrade does not send a burst of old news.
    op.execute("UPDATE alerts SET notified = state")
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("comparison", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("for_seconds", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("webhooks", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_alert_deliveries_alert", ["alert_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_deliveries_alert")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_rules")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        for column in reversed(ALERT_COLUMNS):
            batch_op.drop_column(column.name)
