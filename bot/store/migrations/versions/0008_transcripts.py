"""transcripts: every step of every attempt, the tier of each model call, the last failure

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcript_step",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("output", sa.String(), nullable=False),
    )
    op.create_index("ix_transcript_task_attempt", "transcript_step", ["task_id", "attempt", "seq"])
    op.create_index("ix_transcript_step_at", "transcript_step", ["at"])
    with op.batch_alter_table("model_call") as batch:
        batch.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("failure_context", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("failure_context")
    with op.batch_alter_table("model_call") as batch:
        batch.drop_column("tier")
    op.drop_index("ix_transcript_step_at", "transcript_step")
    op.drop_index("ix_transcript_task_attempt", "transcript_step")
    op.drop_table("transcript_step")
