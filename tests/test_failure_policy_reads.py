"""The failure policy a failed run follows is its repository's: GitHub failing to answer while
it is read is waited out, never replaced by the default policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.config.source import ConfigProvider
from bot.core.errors import GitHubTransientError
from bot.execution.ending import failure_policy_of
from bot.github.client import GitHubClient
from bot.store.tables import Task
from tests.events import example_config
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]


def task_at(sha: str) -> Task:
    return Task(
        id=1,
        installation_id=7,
        repo_full_name="acme/app",
        issue_number=12,
        task_name="fix-bug",
        state="running",
        branch="bosun/fix-bug/12",
        triggered_by="alice",
        trigger_delivery_id="d-1",
        config_sha=sha,
    )


@pytest.fixture
def sha(fake_github: FakeGitHub) -> str:
    files = example_config()
    policy = files[".bosun/policy.yaml"].replace(b"then: escalate", b"then: rollback")
    files[".bosun/policy.yaml"] = policy.replace(b"attempts: 1", b"attempts: 3")
    fake_github.add_repo("acme", "app", installation_id=7, files=files)
    return fake_github.branch_sha("acme", "app", "main")


async def test_github_failing_while_the_policy_is_read_is_waited_out(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    clock: FakeClock,
    sha: str,
    prism_violations: Violations,
) -> None:
    """Six 503s in a row outlast the client's own retries; the read goes on, on the clock,
    and the repository's `then: rollback` is what the run follows."""
    fake_github.fail_next("GET", r"/contents/", 503, times=6)
    configs = ConfigProvider(github_via_prism)
    policy = await failure_policy_of(configs, task_at(sha), clock=clock)
    assert (policy.then, policy.retry.attempts) == ("rollback", 3)
    assert clock.slept  # it waited, on the injected clock
    assert prism_violations() == []


async def test_github_down_for_good_raises_instead_of_guessing(
    github_via_prism: GitHubClient, fake_github: FakeGitHub, clock: FakeClock, sha: str
) -> None:
    """A read that never succeeds is an error for the caller to retry later (recovery takes
    the run over), not the default policy in the repository's place."""
    fake_github.fail_next("GET", r"/contents/", 503, times=1000)
    configs = ConfigProvider(github_via_prism)
    with pytest.raises(GitHubTransientError):
        await failure_policy_of(configs, task_at(sha), clock=clock)


async def test_an_unusable_config_falls_back_to_the_defaults(
    github_via_prism: GitHubClient, fake_github: FakeGitHub, clock: FakeClock
) -> None:
    """A policy that is no policy at all leaves nothing to follow but the defaults."""
    fake_github.add_repo("acme", "app", installation_id=7, files={".bosun/policy.yaml": b"[1, 2"})
    sha = fake_github.branch_sha("acme", "app", "main")
    policy = await failure_policy_of(ConfigProvider(github_via_prism), task_at(sha), clock=clock)
    assert policy.then == "escalate"
