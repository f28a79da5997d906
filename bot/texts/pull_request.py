"""The body of the agent's pull request."""

from __future__ import annotations

from bot.texts.facts import RunFacts, cost_line
from bot.texts.markdown import quoted, without_mentions


def draft_pull_request_body(
    *, issue_number: int, task_name: str, reason: str, facts: RunFacts
) -> str:
    """A draft pull request of work that did not pass: it says so first, and why."""
    return "\n".join(
        [
            f"**Not ready: Bosun's `{task_name}` task for #{issue_number} failed.** "
            "This draft keeps the agent's last change so that people can pick it up; "
            "it does not close the issue.",
            "",
            "Why:",
            "",
            quoted(without_mentions(reason or "(no reason recorded)")),
            "",
            "The `bosun/task` check run of its head commit lists the verification results "
            "and the agent's steps. Push to the branch, or comment `/bosun retry` on the "
            "issue to run the task again from here.",
            "",
            f"Cost so far: {cost_line(facts)}.",
        ]
    )


def pull_request_body(*, issue_number: int, task_name: str, summary: str, facts: RunFacts) -> str:
    changed = "\n".join(f"- `{path}`" for path in facts.files_changed[:50]) or "- (none)"
    return "\n".join(
        [
            f"Closes #{issue_number}",
            "",
            f"Bosun ran the `{task_name}` task for this issue. What the agent says it did:",
            "",
            quoted(without_mentions(summary or "(no summary)")),
            "",
            "Files changed:",
            changed,
            "",
            f"Cost: {cost_line(facts)}. Review it as you would any contribution: Bosun never "
            "merges without the approvals the repository's policy asks for.",
        ]
    )
