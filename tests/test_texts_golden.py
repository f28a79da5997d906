"""What Bosun posts is pinned by golden files: a change to what people read is deliberate.

Run `BOSUN_UPDATE_GOLDEN=1 pytest tests/test_texts_golden.py` to rewrite them after such a change,
and review the diff of `tests/golden/` like any other.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.core.commands import help_text
from bot.texts.check_run import check_run_summary
from bot.texts.facts import RunFacts
from bot.texts.hand_over import hand_over_comment
from bot.texts.pull_request import draft_pull_request_body, pull_request_body
from bot.texts.status import Phase, StatusView, status_comment, status_table
from bot.texts.transcript import StepLine

GOLDEN = Path(__file__).parent / "golden"

FACTS = RunFacts(
    models=("gpt-4o-mini", "claude-3-5-haiku-20241022"),
    tokens_in=12_345,
    tokens_out=678,
    cost_usd=0.01234,
    duration=timedelta(seconds=95),
    attempts=1,
    max_attempts=2,
    audit_id=57,
    files_changed=("src/app.py", "tests/test_app.py"),
    sandbox="bubblewrap",
    approvals=1,
    required_approvals=2,
)


STEPS = [
    StepLine(
        attempt=1,
        phase="setup",
        name="python3 -m venv .venv",
        ok=True,
        exit_code=0,
        duration_ms=2100,
    ),
    StepLine(
        attempt=1,
        phase="agent",
        name="read_file",
        ok=True,
        duration_ms=3,
        arguments={"path": "src/calc/core.py"},
    ),
    StepLine(
        attempt=1,
        phase="agent",
        name="edit_file",
        ok=True,
        duration_ms=4,
        arguments={"path": "src/calc/core.py", "old": "a - b", "new": "a + b"},
    ),
    StepLine(
        attempt=1,
        phase="agent",
        name="run_command",
        ok=False,
        exit_code=1,
        duration_ms=1800,
        arguments={"argv": ["pytest", "-q"]},
    ),
]
CHECK_PASSED = StepLine(
    attempt=1, phase="verify", name=".venv/bin/ruff check .", ok=True, exit_code=0, duration_ms=400
)
CHECK_FAILED = StepLine(
    attempt=1,
    phase="verify",
    name=".venv/bin/pytest -q",
    ok=False,
    exit_code=1,
    duration_ms=2600,
    output="F.\n=== FAILURES ===\nassert add(2, 2) == 4\nE   assert 0 == 4\n1 failed, 1 passed",
)


def view(phase: Phase, **overrides: object) -> StatusView:
    fields: dict[str, object] = {
        "issue_number": 12,
        "task_name": "fix-bug",
        "branch": "bosun/fix-bug/12",
        "triggered_by": "alice",
        "phase": phase,
        "facts": FACTS,
        "task_id": 42,
    }
    fields.update(overrides)
    return StatusView(**fields)  # type: ignore[arg-type]


TEXTS = {
    "status-held": status_comment(
        view(Phase.HELD, reason="@trinity has **triage** permission, and that is not enough.")
    ),
    "status-waiting": status_comment(
        view(
            Phase.WAITING,
            task_name="add-tests",
            branch="bosun/add-tests/12",
            reason="`fix-bug`, `update-docs`",
        )
    ),
    "status-queued": status_comment(view(Phase.QUEUED)),
    "status-running": status_comment(view(Phase.RUNNING)),
    "status-pr-opened": status_comment(view(Phase.PR_OPENED, pr_number=34)),
    "status-failed": status_comment(
        view(Phase.FAILED, reason="nothing was pushed: the change touches protected paths")
    ),
    "status-cancelled": status_comment(view(Phase.CANCELLED, reason="label removed by @alice")),
    "status-retrying": status_comment(
        view(
            Phase.RETRYING,
            reason="agent error: the model failed: gpt-4o-mini: rate_limit. Attempt 1 of 2 "
            "failed; the next starts in 1m 00s.",
        )
    ),
    "status-escalating": status_comment(
        view(
            Phase.ESCALATING,
            reason="stuck: the worktree did not change for 20 steps. Its retries are used up; "
            "one more run on the `large` tier.",
        )
    ),
    "status-handed-over": status_comment(
        view(
            Phase.HANDED_OVER,
            reason="step limit: stopped after 50 steps without a final answer. Handed to people.",
            mentions=("maya", "acme/platform-leads"),
        )
    ),
    "status-rolled-back": status_comment(
        view(
            Phase.ROLLED_BACK,
            reason="push refused: git push failed: pre-receive hook declined. Rolled back.",
            undone=("pull request #34 closed", "branch `bosun/fix-bug/12` deleted"),
        )
    ),
    "hand-over": hand_over_comment(
        task_name="fix-bug",
        reason="budget spent: the task's budget of $2.00 is spent. Handed to people.",
        label="bosun/needs-human",
        mentions=("maya", "acme/platform-leads"),
        branch="bosun/fix-bug/12",
    ),
    "status-done": status_comment(view(Phase.DONE, pr_number=34)),
    "status-abandoned": status_comment(
        view(Phase.ABANDONED, reason="pull request #34 closed by @bob")
    ),
    "check-run-summary": check_run_summary(FACTS, outcome="success"),
    "check-run-verification-failed": check_run_summary(
        FACTS,
        outcome="failure",
        checks=[CHECK_PASSED, CHECK_FAILED],
        steps=[*STEPS, CHECK_PASSED, CHECK_FAILED],
        task_id=42,
    ),
    "status-verification-failed-kept": status_comment(
        view(
            Phase.HANDED_OVER,
            reason="verification failed: 1 of 2 verification commands failed: "
            "`.venv/bin/pytest -q`. Handed to people.",
            pr_number=35,
        )
    ),
    "draft-pull-request-body": draft_pull_request_body(
        issue_number=12,
        task_name="fix-bug",
        reason="verification failed: 1 of 2 verification commands failed: `.venv/bin/pytest -q`",
        facts=FACTS,
    ),
    "pull-request-body": pull_request_body(
        issue_number=12,
        task_name="fix-bug",
        summary="Fixed the parser.\n\nAdded a test.",
        facts=FACTS,
    ),
    "help": help_text(),
    "help-malformed": help_text("unknown command"),
    "status-table": status_table(
        [
            SimpleNamespace(
                task_name="fix-bug",
                state="pr_open",
                attempts=1,
                max_attempts=2,
                cost_usd=0.0123,
                pr_number=34,
            ),
            SimpleNamespace(
                task_name="add-tests",
                state="queued",
                attempts=0,
                max_attempts=2,
                cost_usd=0.0,
                pr_number=None,
            ),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_posted_text_matches_its_golden_file(name: str) -> None:
    """Each text Bosun posts reads exactly as reviewed."""
    path = GOLDEN / f"{name}.md"
    text = TEXTS[name] + "\n"
    if os.environ.get("BOSUN_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with BOSUN_UPDATE_GOLDEN=1"
    assert text == path.read_text()
