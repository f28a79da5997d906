"""The body of the agent's pull request."""

from __future__ import annotations

from bot.texts.facts import RunFacts, cost_line
from bot.texts.markdown import quoted, without_mentions


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
