"""prediction log: closed log files, one record per sampled request, deployment policy

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07 01:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prediction_log", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "prediction_log_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False, unique=True),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_prediction_log_files_model_time",
        "prediction_log_files",
        ["model", "version", "last_at"],
    )
    op.create_table(
        "prediction_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("prediction", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("label", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_digest", sa.String(80), nullable=False),
        sa.UniqueConstraint("model", "request_id", name="uq_prediction_records_model_request"),
    )
    op.create_index("ix_prediction_records_model_at", "prediction_records", ["model", "at"])


def downgrade() -> None:
    op.drop_index("ix_prediction_records_model_at", table_name="prediction_records")
    op.drop_table("prediction_records")
    op.drop_index("ix_prediction_log_files_model_time", table_name="prediction_log_files")
    op.drop_table("prediction_log_files")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("prediction_log")
