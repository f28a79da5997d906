"""publications: what GitHub should show for each task, and the revision it shows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "status_revision",
    "status_synced",
    "check_revision",
    "check_synced",
    "publish_failures",
)


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("status_view", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("check_view", sa.JSON(), nullable=True))
        for name in COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("publish_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("publish_not_before", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_task_publish_pending", ["publish_pending"])


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_index("ix_task_publish_pending")
        for name in ("publish_not_before", "publish_pending", *COUNTERS, "check_view"):
            batch.drop_column(name)
        batch.drop_column("status_view")
