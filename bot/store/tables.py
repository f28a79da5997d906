"""SQLModel tables: what Bosun remembers between events and restarts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from bot.core.task_states import TaskState


def _timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


class Delivery(SQLModel, table=True):
    """One webhook delivery, stored verbatim before it is acknowledged."""

    __tablename__ = "delivery"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=64)
    action: str | None = Field(default=None, max_length=64)
    installation_id: int | None = Field(default=None, sa_type=BigInteger)
    repo_full_name: str | None = Field(default=None, max_length=256)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = _timestamp()
    handled_at: datetime | None = _timestamp(nullable=True, index=True)
    outcome: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None)
    attempts: int = Field(default=0)


class Task(SQLModel, table=True):
    """One agent task: the desired state a label or command asked for."""

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("trigger_delivery_id", "task_name", name="uq_task_trigger"),
        Index("ix_task_repo_issue", "repo_full_name", "issue_number"),
        Index("ix_task_state", "state"),
        # The scheduler's queue: queued tasks by priority, then age.
        Index("ix_task_queue", "state", "priority", "id"),
        Index("ix_task_publish_pending", "publish_pending"),
    )

    id: int | None = Field(default=None, primary_key=True)
    installation_id: int = Field(sa_type=BigInteger)
    repo_full_name: str = Field(max_length=256)
    issue_number: int
    is_pull_request: bool = Field(default=False)
    task_name: str = Field(max_length=64)
    # Stored as text so that a new state is a data change, not an ALTER TYPE.
    state: TaskState = Field(sa_type=String(16))
    branch: str = Field(max_length=256)
    triggered_by: str = Field(max_length=64)
    trigger_delivery_id: str = Field(max_length=64)
    config_sha: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None)
    base_branch: str = Field(default="main", max_length=256)
    priority: int = Field(default=0)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=2)
    cancel_requested: bool = Field(default=False)
    worker_id: str | None = Field(default=None, max_length=128)
    pr_number: int | None = Field(default=None)
    head_sha: str | None = Field(default=None, max_length=64)
    status_comment_id: int | None = Field(default=None, sa_type=BigInteger)
    check_run_id: int | None = Field(default=None, sa_type=BigInteger)
    # A reviewer's "changes requested" (body and inline comments) for the agent to address.
    review_context: str | None = Field(default=None)
    # The failure policy's marks: when a retry may start, the tier an escalation chose,
    # whether the task was escalated, and the kind of its last failure.
    not_before: datetime | None = _timestamp(nullable=True)
    tier: str | None = Field(default=None, max_length=64)
    escalated: bool = Field(default=False)
    failure_kind: str | None = Field(default=None, max_length=32)
    # What the last failed attempt should tell the next: kind, reason, failing output.
    failure_context: str | None = Field(default=None)
    # What Bosun pushed for the task, so a rollback can undo it: the branch head before its
    # first push, its last push, and whether that first push created the branch.
    pushed_from_sha: str | None = Field(default=None, max_length=64)
    pushed_sha: str | None = Field(default=None, max_length=64)
    created_branch: bool = Field(default=False)
    # What GitHub should show for the task, written with each state change, and the revision
    # last shown there: the reconcile loop re-publishes until the two agree.
    status_view: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    status_revision: int = Field(default=0)
    status_synced: int = Field(default=0)
    check_view: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    check_revision: int = Field(default=0)
    check_synced: int = Field(default=0)
    publish_pending: bool = Field(default=False)
    publish_failures: int = Field(default=0)
    publish_not_before: datetime | None = _timestamp(nullable=True)
    cost_usd: float = Field(default=0.0)
    tokens_in: int = Field(default=0)
    tokens_out: int = Field(default=0)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    started_at: datetime | None = _timestamp(nullable=True)
    finished_at: datetime | None = _timestamp(nullable=True)


class Installation(SQLModel, table=True):
    """A GitHub App installation and whether it is still active."""

    __tablename__ = "installation"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    account_login: str = Field(max_length=256)
    account_type: str = Field(max_length=32)
    status: str = Field(max_length=16)
    updated_at: datetime = _timestamp()


class InstallationRepository(SQLModel, table=True):
    """A repository an installation grants Bosun access to."""

    __tablename__ = "installation_repository"

    installation_id: int = Field(
        sa_column=Column(BigInteger, primary_key=True, autoincrement=False)
    )
    repo_full_name: str = Field(primary_key=True, max_length=256)
    added_at: datetime = _timestamp()


class AuditRecord(SQLModel, table=True):
    """Append-only: who did what, where, why, under which delivery and config."""

    __tablename__ = "audit_record"
    __table_args__ = (Index("ix_audit_repo_at", "repo_full_name", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _timestamp()
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    repo_full_name: str | None = Field(default=None, max_length=256)
    delivery_id: str | None = Field(default=None, max_length=64)
    config_sha: str | None = Field(default=None, max_length=64)
    task_id: int | None = Field(default=None, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Lease(SQLModel, table=True):
    """An expiring claim: a branch lock held by one running task until released or expired."""

    __tablename__ = "lease"

    key: str = Field(primary_key=True, max_length=400)
    task_id: int = Field(index=True)
    holder: str = Field(max_length=128)
    expires_at: datetime = _timestamp(index=True)


class TranscriptStep(SQLModel, table=True):
    """One step of a run: a setup or verify command, or a tool call of the agent, with what
    it returned (trimmed, secrets redacted). Model calls are kept in `model_call`."""

    __tablename__ = "transcript_step"
    __table_args__ = (Index("ix_transcript_task_attempt", "task_id", "attempt", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int
    attempt: int
    seq: int
    at: datetime = _timestamp(index=True)
    phase: str = Field(max_length=16)  # setup, agent, verify
    name: str = Field(max_length=128)  # the tool, or the command's first word
    arguments: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ok: bool
    exit_code: int | None = Field(default=None)
    duration_ms: float = Field(default=0.0)
    output: str = Field(default="")


class ModelCallRecord(SQLModel, table=True):
    """One model call: what it cost and whether the cache answered it."""

    __tablename__ = "model_call"
    __table_args__ = (Index("ix_model_call_task", "task_id"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int
    attempt: int
    at: datetime = _timestamp()
    model: str = Field(max_length=128)
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cache_hit: bool
    latency_ms: float
    tier: str | None = Field(default=None, max_length=64)


class RepoConfigRecord(SQLModel, table=True):
    """A repository's last good `.bosun/` config commit, so a restart serves it again."""

    __tablename__ = "repo_config"

    repo_full_name: str = Field(primary_key=True, max_length=256)
    good_sha: str = Field(max_length=64)
    accepted_at: datetime = _timestamp()
