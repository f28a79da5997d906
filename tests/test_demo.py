"""`bosun demo` runs the whole loop on this machine and ends with an open pull request."""

from __future__ import annotations

from bot.demo.run import main


def test_the_demo_opens_a_pull_request_in_the_real_sandbox(sandbox_user: str) -> None:
    """The README's first command: diff, check run, status comment, and it says it simulates."""
    lines: list[str] = []
    assert main(keep=False, sandbox="bubblewrap", say=lines.append) == 0
    output = "\n".join(lines)
    assert output.startswith("This is a simulation")
    assert "sandbox: bubblewrap" in output
    assert "-    return a - b\n+    return a + b" in output
    assert "=== check run bosun/task: success" in output
    assert "**Pull request #2 is ready for review** for `fix-bug`." in output, output
    assert "demo finished: the task ended pr_open" in output
