"""failure policy: retry backoff, escalation tier, failure kind, what was pushed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("escalated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("failure_kind", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("pushed_from_sha", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("pushed_sha", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("created_branch", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        for column in (
            "created_branch",
            "pushed_sha",
            "pushed_from_sha",
            "failure_kind",
            "escalated",
            "tier",
            "not_before",
        ):
            batch.drop_column(column)
