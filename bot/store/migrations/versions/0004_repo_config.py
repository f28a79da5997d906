"""repo config: each repository's last good config commit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repo_config",
        sa.Column("repo_full_name", sa.String(length=256), nullable=False),
        sa.Column("good_sha", sa.String(length=64), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("repo_full_name"),
    )


def downgrade() -> None:
    op.drop_table("repo_config")
