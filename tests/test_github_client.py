"""The GitHub client against the fake GitHub: tokens, reads, writes, errors, retries, ETags,
and the agent loop's pull requests, check runs and status comment."""

from __future__ import annotations

import socket
from datetime import timedelta
from http import HTTPStatus

import aiohttp
import pytest
from structlog.testing import capture_logs

from bot.core.errors import GitHubError, GitHubRateLimited, GitHubTransientError, SettingsError
from bot.github.checks import TRUNCATED, fit_output
from bot.github.client import GitHubClient
from bot.github.repos import FileTooLarge
from bot.github.types import Annotation, CheckConclusion, CheckStatus, PullState, Repo
from bot.settings import Secret
from tests.fakeclock import FakeClock
from tests.fakegithub import BOT_LOGIN, FakeGitHub
from tests.github_fixtures import APP_ID, new_app_key

POLICY = b"version: 1\ntrigger: write\n"


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    return fake_github.add_repo(
        "acme",
        "widgets",
        installation_id=7,
        files={
            ".bosun/policy.yaml": POLICY,
            ".bosun/tasks/fix.yaml": b"agent: builtin\n",
            ".bosun/tasks/docs.yaml": b"agent: builtin\n",
            ".bosun/tasks/extra/deep.yaml": b"agent: builtin\n",
            "README.md": b"# widgets\n",
        },
    )


def client_on(
    fake: FakeGitHub,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    private_key: str,
    *,
    base_url: str | None = None,
    max_attempts: int = 4,
    timeout: float = 15.0,
) -> GitHubClient:
    return GitHubClient(
        session=session,
        base_url=base_url or fake.url,
        app_id=APP_ID,
        private_key=Secret(private_key),
        clock=clock,
        etag_cache={},
        max_attempts=max_attempts,
        timeout=timeout,
    )


def token_requests(fake: FakeGitHub) -> int:
    return sum(1 for r in fake.requests if r.raw_path.endswith("/access_tokens"))


# App authentication


async def test_installation_token_is_reused_until_five_minutes_before_it_expires(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """One token per installation serves every call until 5 minutes before its expiry."""
    await github_client.repos.get_repository(repo=repo)
    await github_client.repos.get_repository(repo=repo)
    clock.advance(timedelta(minutes=54).total_seconds())
    await github_client.repos.get_branch_sha(repo=repo, branch="main")
    assert token_requests(fake_github) == 1

    clock.advance(timedelta(minutes=1, seconds=1).total_seconds())
    await github_client.repos.get_branch_sha(repo=repo, branch="main")
    assert token_requests(fake_github) == 2


async def test_each_installation_gets_its_own_token(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Repositories of different installations are reached with different tokens."""
    other = fake_github.add_repo("globex", "gadgets", installation_id=8)
    await github_client.repos.get_repository(repo=repo)
    await github_client.repos.get_repository(repo=other)
    assert sorted(installation for installation, _ in fake_github.tokens.values()) == [7, 8]


async def test_a_jwt_signed_with_another_key_is_refused(
    fake_github: FakeGitHub,
    github_session: aiohttp.ClientSession,
    clock: FakeClock,
    repo: Repo,
) -> None:
    """GitHub verifies the App's JWT; a key that is not the App's gets 401 and no token."""
    stranger_key = new_app_key()[0]
    fake_github.now = clock.now
    client = client_on(fake_github, github_session, clock, stranger_key, max_attempts=1)
    with pytest.raises(GitHubError) as caught:
        await client.repos.get_repository(repo=repo)
    assert caught.value.status_code == 401
    assert fake_github.tokens == {}


async def test_a_revoked_token_fails_once_then_a_new_one_is_fetched(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A token GitHub no longer accepts is dropped, so the next call works again."""
    await github_client.repos.get_repository(repo=repo)
    fake_github.tokens.clear()
    with pytest.raises(GitHubError) as caught:
        await github_client.repos.get_repository(repo=repo)
    assert caught.value.status_code == 401
    assert (await github_client.repos.get_repository(repo=repo)).full_name == "acme/widgets"
    assert token_requests(fake_github) == 2


async def test_tokens_and_the_private_key_never_reach_logs_or_errors(
    github_client: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    github_app_key: tuple[str, str],
) -> None:
    """Secrets stay out of every log line and exception message, retries included."""
    fake_github.fail_next("GET", r"/repos/acme/widgets$", 502, times=3)
    fake_github.fail_next("GET", r"/contents/", 403)
    with capture_logs() as logs:
        await github_client.repos.get_repository(repo=repo)
        with pytest.raises(GitHubError) as caught:
            await github_client.repos.get_file(repo=repo, path="README.md")
    assert len(logs) == 3
    secrets = [*fake_github.tokens, github_app_key[0].splitlines()[1]]
    seen = repr(logs) + str(caught.value) + repr(caught.value) + str(caught.value.__cause__)
    assert not [secret for secret in secrets if secret in seen]


async def test_without_app_credentials_requests_go_out_anonymously(
    fake_github: FakeGitHub,
    github_session: aiohttp.ClientSession,
    clock: FakeClock,
    repo: Repo,
) -> None:
    """With no App configured, Bosun asks GitHub anonymously: private repositories are 404."""
    client = GitHubClient(
        session=github_session,
        base_url=fake_github.url,
        app_id=None,
        private_key=None,
        clock=clock,
    )
    assert await client.repos.get_file(repo=repo, path="README.md") is None
    assert [r.headers.get("authorization") for r in fake_github.requests] == [None]


def test_repo_comes_from_the_webhook_payload() -> None:
    """A webhook names the repository and the installation that delivered it."""
    payload = {
        "action": "labeled",
        "installation": {"id": 7, "node_id": "MDIz"},
        "repository": {"name": "widgets", "full_name": "acme/widgets", "owner": {"login": "acme"}},
    }
    repo = Repo.from_payload(payload)
    assert repo == Repo(installation_id=7, owner="acme", name="widgets")
    assert repo.full_name == "acme/widgets"


# Reads


@pytest.mark.parametrize("role", ["admin", "maintain", "write", "triage", "read"])
async def test_permission_is_the_collaborators_role(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, role: str
) -> None:
    """The finer role name (maintain, triage) is kept, not GitHub's legacy permission."""
    fake_github.set_permission("acme", "widgets", "dev", role)
    assert await github_client.repos.permission_of(repo=repo, username="dev") == role


async def test_a_custom_role_counts_as_its_base_permission(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A custom repository role is judged by the base permission GitHub reports for it."""
    fake_github.set_permission("acme", "widgets", "auditor", "security-auditor")
    assert await github_client.repos.permission_of(repo=repo, username="auditor") == "read"


async def test_someone_who_is_no_collaborator_has_permission_none(
    github_client: GitHubClient, repo: Repo
) -> None:
    """GitHub's 404 for a non-collaborator means: no permission at all."""
    assert await github_client.repos.permission_of(repo=repo, username="stranger") == "none"


async def test_repository_and_branch_sha(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """The default branch comes from the repository; a branch resolves to its head sha."""
    assert (await github_client.repos.get_repository(repo=repo)).default_branch == "main"
    sha = await github_client.repos.get_branch_sha(repo=repo, branch="main")
    assert sha == fake_github.branch_sha("acme", "widgets", "main")
    assert len(sha) == 40


async def test_a_branch_name_with_slashes_is_sent_percent_encoded(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Agent branches are named bosun/<task>/<issue>; their slashes travel as %2F."""
    sha = fake_github.add_branch("acme", "widgets", "bosun/fix/12")
    assert await github_client.repos.get_branch_sha(repo=repo, branch="bosun/fix/12") == sha
    assert fake_github.requests[-1].raw_path.endswith("/git/ref/heads%2Fbosun%2Ffix%2F12")


async def test_a_file_is_read_at_a_ref(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """File contents come back as the exact bytes at the ref asked for."""
    fake_github.add_branch("acme", "widgets", "bosun/fix/12")
    fake_github.set_file("acme", "widgets", ".bosun/policy.yaml", b"changed\n", branch="main")
    on_branch = await github_client.repos.get_file(
        repo=repo, path=".bosun/policy.yaml", ref="bosun/fix/12"
    )
    on_default = await github_client.repos.get_file(repo=repo, path=".bosun/policy.yaml")
    assert (on_branch, on_default) == (POLICY, b"changed\n")
    assert "/contents/.bosun%2Fpolicy.yaml" in fake_github.requests[-1].raw_path


async def test_a_missing_file_or_directory_is_none_or_empty(
    github_client: GitHubClient, repo: Repo
) -> None:
    """A path that does not exist is not an error: None for a file, [] for a directory."""
    assert (
        await github_client.repos.get_file(repo=repo, path=".bosun/nope.yaml", ref="main") is None
    )
    assert await github_client.repos.list_directory(repo=repo, path=".bosun/nope", ref="main") == []


async def test_a_directory_lists_its_files_only(github_client: GitHubClient, repo: Repo) -> None:
    """Listing a directory gives the paths of the files in it, not of its subdirectories."""
    listed = await github_client.repos.list_directory(repo=repo, path=".bosun/tasks", ref="main")
    assert sorted(listed) == [".bosun/tasks/docs.yaml", ".bosun/tasks/fix.yaml"]


async def test_a_file_github_will_not_send_inline_is_too_large_with_its_size(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """GitHub answers a file over 1 MB without content: that is FileTooLarge, with the size."""
    big = b"#" * 2_000_000
    fake_github.set_file("acme", "widgets", ".bosun/policy.yaml", big)
    with pytest.raises(FileTooLarge) as caught:
        await github_client.repos.get_file(repo=repo, path=".bosun/policy.yaml")
    assert (caught.value.path, caught.value.size, caught.value.status_code) == (
        ".bosun/policy.yaml",
        2_000_000,
        200,
    )


async def test_reading_a_directory_as_a_file_is_an_error(
    github_client: GitHubClient, repo: Repo
) -> None:
    """A directory where a file was expected is a mistake worth surfacing, not None."""
    with pytest.raises(GitHubError, match="not a file"):
        await github_client.repos.get_file(repo=repo, path=".bosun/tasks", ref="main")


async def test_a_second_identical_read_is_conditional_and_answered_304(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Repeated reads send If-None-Match; GitHub's 304 is served from the cache."""
    for _ in range(2):
        assert await github_client.repos.get_file(repo=repo, path="README.md") == b"# widgets\n"
        await github_client.repos.get_branch_sha(repo=repo, branch="main")
        await github_client.repos.get_repository(repo=repo)
    reads = [r for r in fake_github.requests if not r.raw_path.endswith("/access_tokens")]
    assert [r.status for r in reads] == [200, 200, 200, 304, 304, 304]
    assert all("if-none-match" in r.headers for r in reads[3:])


async def test_a_changed_file_is_read_afresh(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """The cache never hides a change: a new ETag means a 200 with the new bytes."""
    await github_client.repos.get_file(repo=repo, path="README.md")
    fake_github.set_file("acme", "widgets", "README.md", b"# widgets v2\n")
    assert await github_client.repos.get_file(repo=repo, path="README.md") == b"# widgets v2\n"
    assert fake_github.requests[-1].status == 200


async def test_comments_are_listed_across_pages(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Every comment is listed, however many pages GitHub splits them into."""
    issue = fake_github.add_issue("acme", "widgets")
    ids = [fake_github.add_comment("acme", "widgets", issue, f"c{i}") for i in range(230)]
    comments = await github_client.issues.list_comments(repo=repo, issue_number=issue)
    assert [c.id for c in comments] == ids
    pages = [r.query.get("page") for r in fake_github.requests if r.raw_path.endswith("/comments")]
    assert pages == [None, "2", "3"]


# Writes


async def test_a_comment_is_created_then_edited_in_place(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Bosun's status comment is one comment, by the App's bot user, edited as things move."""
    issue = fake_github.add_issue("acme", "widgets")
    comment_id = await github_client.issues.create_comment(
        repo=repo, issue_number=issue, body="queued", marker="<!-- bosun:test 1 -->"
    )
    await github_client.issues.update_comment(repo=repo, comment_id=comment_id, body="running")
    [comment] = fake_github.comments("acme", "widgets", issue)
    assert (comment["id"], comment["body"], comment["user"]["login"]) == (
        comment_id,
        "running",
        BOT_LOGIN,
    )


async def test_labels_are_added_and_removed_and_a_missing_one_is_fine(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Removing a label that is not there is not an error: the end state is the same."""
    issue = fake_github.add_issue("acme", "widgets", labels=["bug"])
    await github_client.issues.add_labels(
        repo=repo, issue_number=issue, labels=["agent:fix", "bosun"]
    )
    await github_client.issues.remove_label(repo=repo, issue_number=issue, name="agent:fix")
    await github_client.issues.remove_label(repo=repo, issue_number=issue, name="agent:fix")
    assert fake_github.labels("acme", "widgets", issue) == ["bug", "bosun"]


async def test_a_reaction_acknowledges_a_command(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Reacting twice with the same content leaves one reaction."""
    issue = fake_github.add_issue("acme", "widgets")
    command = fake_github.add_comment("acme", "widgets", issue, "/bosun run fix")
    for _ in range(2):
        await github_client.issues.create_reaction_for_comment(
            repo=repo, comment_id=command, content="+1"
        )
    assert fake_github.reactions(command) == ["+1"]


# Errors and retries


RATE_LIMITED = "API rate limit exceeded for installation ID 7."
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes."


def status_cases(now: float) -> list[tuple[int, dict[str, str], str, type[GitHubError], float]]:
    """(status, headers, message, exception, retry_after) for each kind of answer."""
    used_up = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 30)}
    limited, plain, transient = GitHubRateLimited, GitHubError, GitHubTransientError
    return [
        (400, {}, "Problems parsing JSON", plain, 0),
        (401, {}, "Bad credentials", plain, 0),
        (403, {}, "Resource not accessible by integration", plain, 0),
        (403, used_up, RATE_LIMITED, limited, 30),
        (429, used_up, RATE_LIMITED, limited, 30),
        (403, {"retry-after": "20"}, SECONDARY, limited, 20),
        (403, {}, SECONDARY, limited, 60),
        (429, {"retry-after": "5"}, SECONDARY, limited, 5),
        (429, {}, SECONDARY, limited, 60),
        (404, {}, "Not Found", plain, 0),
        (409, {}, "Git Repository is empty.", plain, 0),
        (422, {}, "Validation Failed", plain, 0),
        (500, {}, "Server Error", transient, 0),
        (502, {}, "Bad Gateway", transient, 0),
        (503, {}, "Service Unavailable", transient, 0),
    ]


async def test_each_kind_of_answer_maps_to_its_exception(
    fake_github: FakeGitHub,
    github_session: aiohttp.ClientSession,
    clock: FakeClock,
    github_app_key: tuple[str, str],
    repo: Repo,
) -> None:
    """5xx is transient, rate limits carry their wait, every other 4xx is a plain error."""
    fake_github.now = clock.now
    client = client_on(fake_github, github_session, clock, github_app_key[0], max_attempts=1)
    await client.repos.get_repository(repo=repo)
    for status, headers, message, expected, retry_after in status_cases(clock.now().timestamp()):
        body = {"message": message, "documentation_url": "https://docs.github.com/rest"}
        fake_github.fail_next("GET", r"/repos/acme/widgets$", status, headers=headers, body=body)
        with pytest.raises(GitHubError) as caught:
            await client.repos.get_repository(repo=repo)
        case = (status, headers, message)
        assert type(caught.value) is expected, case
        assert caught.value.status_code == status, case
        assert getattr(caught.value, "retry_after", 0) == retry_after, case

    fake_github.fail_next("GET", r"/git/ref/", 304)  # a redirect class answer with nothing cached
    with pytest.raises(GitHubError) as redirected:
        await client.repos.get_branch_sha(repo=repo, branch="main")
    assert (type(redirected.value), redirected.value.status_code) == (GitHubError, 304)


async def test_every_error_status_is_mapped(
    fake_github: FakeGitHub,
    github_session: aiohttp.ClientSession,
    clock: FakeClock,
    github_app_key: tuple[str, str],
    repo: Repo,
) -> None:
    """No status GitHub might answer escapes as a gidgethub or aiohttp exception."""
    fake_github.now = clock.now
    client = client_on(fake_github, github_session, clock, github_app_key[0], max_attempts=1)
    await client.repos.get_repository(repo=repo)
    for status in (s for s in HTTPStatus if s >= 400):
        fake_github.fail_next("GET", r"/repos/acme/widgets$", status)
        with pytest.raises(GitHubError) as caught:
            await client.repos.get_repository(repo=repo)
        if status >= 500:
            expected: type[GitHubError] = GitHubTransientError
        elif status == 429:
            expected = GitHubRateLimited
        else:
            expected = GitHubError
        assert (type(caught.value), caught.value.status_code) == (expected, status)


async def test_no_answer_at_all_is_transient(
    github_session: aiohttp.ClientSession,
    clock: FakeClock,
    github_app_key: tuple[str, str],
    fake_github: FakeGitHub,
    repo: Repo,
) -> None:
    """A refused connection or a request that outlives its timeout is worth retrying later."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    refused = client_on(
        fake_github,
        github_session,
        clock,
        github_app_key[0],
        base_url=f"http://127.0.0.1:{closed_port}",
        max_attempts=1,
    )
    with pytest.raises(GitHubTransientError) as caught:
        await refused.repos.get_repository(repo=repo)
    assert caught.value.status_code == 0

    fake_github.now = clock.now
    slow = client_on(
        fake_github, github_session, clock, github_app_key[0], max_attempts=1, timeout=0.05
    )
    fake_github.fail_next("POST", r"/access_tokens$", 500, delay=0.5)
    with pytest.raises(GitHubTransientError, match="TimeoutError"):
        await slow.repos.get_repository(repo=repo)


async def test_transient_failures_are_retried_with_backoff_on_the_clock(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """A 5xx is retried after 1 s, then 2 s, ... slept on the injected clock."""
    fake_github.fail_next("GET", r"/contents/", 502, times=2)
    assert await github_client.repos.get_file(repo=repo, path="README.md") == b"# widgets\n"
    assert clock.slept == [1.0, 2.0]


async def test_retries_stop_after_max_attempts(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """A failure that persists raises after max_attempts tries (4 by default)."""
    fake_github.fail_next("GET", r"/repos/acme/widgets$", 503, times=10)
    with pytest.raises(GitHubTransientError):
        await github_client.repos.get_repository(repo=repo)
    assert clock.slept == [1.0, 2.0, 4.0]
    assert sum(r.raw_path == "/repos/acme/widgets" for r in fake_github.requests) == 4


async def test_rate_limits_wait_as_long_as_github_says(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """Retry-After is honoured; a primary limit waits until X-RateLimit-Reset."""
    fake_github.fail_next("GET", r"/repos/acme/widgets$", 429, headers={"Retry-After": "7"})
    await github_client.repos.get_repository(repo=repo)
    reset = str(int(clock.now().timestamp()) + 30)
    fake_github.fail_next(
        "GET",
        r"/git/ref/",
        403,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        body={"message": RATE_LIMITED},
    )
    await github_client.repos.get_branch_sha(repo=repo, branch="main")
    assert clock.slept == [7.0, 30.0]


async def test_a_long_rate_limit_fails_fast_instead_of_blocking_a_worker(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """A wait over a minute is raised at once with retry_after, for the queue to requeue."""
    fake_github.fail_next("GET", r"/repos/acme/widgets$", 403, headers={"Retry-After": "3600"})
    with pytest.raises(GitHubRateLimited) as caught:
        await github_client.repos.get_repository(repo=repo)
    assert caught.value.retry_after == 3600
    assert clock.slept == []


async def test_client_errors_are_not_retried(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """A 4xx will not change by asking again."""
    fake_github.fail_next("GET", r"/repos/acme/widgets$", 422, times=10)
    with pytest.raises(GitHubError):
        await github_client.repos.get_repository(repo=repo)
    assert clock.slept == []


# The App itself


async def test_the_app_knows_its_own_id_and_bot_account(
    github_client: GitHubClient, fake_github: FakeGitHub
) -> None:
    """The App's id and bot login come from GitHub, asked once with the App's JWT."""
    for _ in range(2):
        identity = await github_client.app_identity()
        assert identity is not None
        assert (identity.id, identity.bot_login) == (int(APP_ID), BOT_LOGIN)
    assert [r.raw_path for r in fake_github.requests] == ["/app"]


async def test_an_installation_token_is_handed_out_for_git(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """git gets the installation's own token, the same one the API calls use meanwhile."""
    token = await github_client.installation_token(installation_id=7)
    await github_client.repos.get_repository(repo=repo)
    assert fake_github.tokens[token][0] == 7
    assert token_requests(fake_github) == 1


async def test_without_app_credentials_there_is_no_token_to_hand_out(
    fake_github: FakeGitHub, github_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """An anonymous client says plainly that no App is configured."""
    client = GitHubClient(
        session=github_session, base_url=fake_github.url, app_id=None, private_key=None, clock=clock
    )
    with pytest.raises(SettingsError):
        await client.installation_token(installation_id=7)
    assert await client.app_identity() is None


async def test_the_clone_url_is_the_repositorys(github_client: GitHubClient, repo: Repo) -> None:
    """git clones from the URL GitHub gives, which carries no credentials."""
    assert await github_client.repos.clone_url(repo=repo) == "https://github.com/acme/widgets.git"


# Issues and pull requests


async def test_an_issue_says_whether_it_is_a_pull_request(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Pull requests are numbered with issues, and read as issues they carry `pull_request`."""
    issue = fake_github.add_issue("acme", "widgets", title="Fix it", body="It breaks", user="dev")
    fake_github.add_branch("acme", "widgets", "feature")
    pull = fake_github.add_pull("acme", "widgets", head="feature", title="A change")
    as_issue = await github_client.issues.get_issue(repo=repo, number=issue)
    as_pull = await github_client.issues.get_issue(repo=repo, number=pull)
    assert (issue, pull) == (1, 2)
    assert (as_issue.title, as_issue.body, as_issue.state) == ("Fix it", "It breaks", "open")
    assert as_issue.author.login == "dev"
    assert not as_issue.is_pull_request
    assert as_pull.is_pull_request
    with pytest.raises(GitHubError) as caught:
        await github_client.issues.get_issue(repo=repo, number=99)
    assert caught.value.status_code == 404


async def test_one_pull_request_per_branch_is_opened_then_found_and_updated(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """The agent's branch gets one pull request; later runs find it and edit it in place."""
    fake_github.add_issue("acme", "widgets")
    fake_github.add_branch("acme", "widgets", "bosun/fix/1")
    head = fake_github.set_file("acme", "widgets", "fix.py", b"fixed\n", branch="bosun/fix/1")
    assert await github_client.pulls.find_open_pull(repo=repo, head_branch="bosun/fix/1") is None

    opened = await github_client.pulls.create_pull(
        repo=repo, title="Fix #1", head="bosun/fix/1", base="main", body="Closes #1"
    )
    found = await github_client.pulls.find_open_pull(repo=repo, head_branch="bosun/fix/1")
    assert found is not None
    assert (opened.number, found.number) == (2, 2)
    assert (found.head_ref, found.head_sha, found.base_ref) == ("bosun/fix/1", head, "main")
    await github_client.pulls.update_pull(repo=repo, number=2, title="Fix #1 again")
    [stored] = fake_github.pulls("acme", "widgets")
    assert (stored["title"], stored["body"]) == ("Fix #1 again", "Closes #1")
    pull = await github_client.pulls.get_pull(repo=repo, number=2)
    assert (pull.open, pull.merged, pull.draft) == (True, False, False)
    assert (stored["changed_files"], stored["additions"]) == (1, 1)
    assert stored["user"]["login"] == BOT_LOGIN


async def test_a_closed_pull_request_is_no_longer_found(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Only an open pull request is reused; a closed one leaves room for a new one."""
    fake_github.add_branch("acme", "widgets", "bosun/fix/1")
    fake_github.set_file("acme", "widgets", "fix.py", b"fixed\n", branch="bosun/fix/1")
    number = fake_github.add_pull("acme", "widgets", head="bosun/fix/1")
    closed = await github_client.pulls.update_pull(repo=repo, number=number, state=PullState.CLOSED)
    assert closed.state == "closed" and not closed.open
    assert await github_client.pulls.find_open_pull(repo=repo, head_branch="bosun/fix/1") is None


async def test_a_fork_branch_of_the_same_name_is_not_bosuns(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A pull request from someone's fork is never taken for the one from Bosun's branch."""
    fake_github.add_pull(
        "acme", "widgets", head="bosun/fix/1", head_repo_full_name="someone/widgets"
    )
    assert await github_client.pulls.find_open_pull(repo=repo, head_branch="bosun/fix/1") is None
    [fork_pull] = fake_github.pulls("acme", "widgets")
    assert fork_pull["head"]["label"] == "someone:bosun/fix/1"
    assert fork_pull["head"]["repo"]["full_name"] == "someone/widgets"


async def test_github_refuses_an_empty_or_a_second_pull_request(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A branch with nothing new, or one that has an open pull request, gets 422."""
    fake_github.add_branch("acme", "widgets", "bosun/fix/1")
    with pytest.raises(GitHubError, match="No commits between") as empty:
        await github_client.pulls.create_pull(
            repo=repo, title="t", head="bosun/fix/1", base="main", body=""
        )
    fake_github.set_file("acme", "widgets", "fix.py", b"fixed\n", branch="bosun/fix/1")
    await github_client.pulls.create_pull(
        repo=repo, title="t", head="bosun/fix/1", base="main", body=""
    )
    with pytest.raises(GitHubError, match="already exists") as second:
        await github_client.pulls.create_pull(
            repo=repo, title="t", head="bosun/fix/1", base="main", body=""
        )
    assert (empty.value.status_code, second.value.status_code) == (422, 422)
    assert len(fake_github.pulls("acme", "widgets")) == 1


async def test_a_branch_is_deleted_and_a_missing_one_is_fine(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Rolling back deletes the branch; deleting it again, or the default branch, changes
    nothing and raises nothing; its open pull request is closed, as GitHub does."""
    fake_github.add_branch("acme", "widgets", "bosun/fix/1")
    fake_github.set_file("acme", "widgets", "fix.py", b"fixed\n", branch="bosun/fix/1")
    number = fake_github.add_pull("acme", "widgets", head="bosun/fix/1")
    for _ in range(2):
        await github_client.repos.delete_branch(repo=repo, branch="bosun/fix/1")
    await github_client.repos.delete_branch(repo=repo, branch="main")
    deletes = [r.raw_path for r in fake_github.requests if r.method == "DELETE"]
    assert deletes[-1] == "/repos/acme/widgets/git/refs/heads%2Fmain"
    assert sorted(fake_github.branches("acme", "widgets")) == ["main"]
    assert (await github_client.pulls.get_pull(repo=repo, number=number)).state == "closed"


# Check runs


async def test_a_check_run_is_created_found_again_and_completed(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clock: FakeClock
) -> None:
    """One check run per name and commit: found by both, then updated in place."""
    sha = fake_github.branch_sha("acme", "widgets", "main")
    created = await github_client.checks.create_check_run(
        repo=repo,
        name="bosun/task",
        head_sha=sha,
        status=CheckStatus.IN_PROGRESS,
        title="Running",
        summary="The agent is at work.",
        started_at=clock.now(),
        external_id="task-42",
    )
    found = await github_client.checks.find_check_run(repo=repo, head_sha=sha, name="bosun/task")
    assert found is not None and found.id == created.id
    assert await github_client.checks.find_check_run(repo=repo, head_sha=sha, name="other") is None

    clock.advance(90)
    await github_client.checks.update_check_run(
        repo=repo,
        check_run_id=created.id,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.SUCCESS,
        title="Done",
        summary="Opened #2.",
        text="tokens: 1200",
        completed_at=clock.now(),
    )
    [run] = fake_github.check_runs("acme", "widgets", head_sha=sha)
    assert (run["status"], run["conclusion"], run["external_id"]) == (
        "completed",
        "success",
        "task-42",
    )
    assert run["output"]["title"] == "Done" and run["output"]["text"] == "tokens: 1200"
    assert (run["started_at"], run["completed_at"]) == (
        "2026-01-05T09:00:00Z",
        "2026-01-05T09:01:30Z",
    )
    checks = [r for r in fake_github.requests if "/check-runs" in r.raw_path and r.method == "GET"]
    assert checks[0].query["app_id"] == APP_ID


def _annotations(count: int) -> list[Annotation]:
    return [
        Annotation(
            path=".bosun/policy.yaml",
            start_line=n + 1,
            end_line=n + 1,
            start_column=3,
            end_column=3,
            message=f"problem {n}",
            title="Invalid policy",
        )
        for n in range(count)
    ]


async def test_annotations_beyond_fifty_follow_in_updates_in_order(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """GitHub takes 50 annotations a request: 120 problems become one create and two updates,
    and the run ends with all 120, in order, its output unchanged."""
    sha = fake_github.branch_sha("acme", "widgets", "main")
    run = await github_client.checks.create_check_run(
        repo=repo,
        name="bosun/policy",
        head_sha=sha,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.FAILURE,
        title="3 problems",
        summary="See the annotations.",
        annotations=_annotations(120),
    )
    sent = [r.method for r in fake_github.requests if "/check-runs" in r.raw_path]
    assert sent == ["POST", "PATCH", "PATCH"]
    assert run.annotations_count == 120
    stored = fake_github.annotations("acme", "widgets", run.id)
    assert [a["message"] for a in stored] == [f"problem {n}" for n in range(120)]
    assert stored[0] == {
        "path": ".bosun/policy.yaml",
        "start_line": 1,
        "end_line": 1,
        "start_column": 3,
        "end_column": 3,
        "annotation_level": "failure",
        "message": "problem 0",
        "title": "Invalid policy",
    }
    [final] = fake_github.check_runs("acme", "widgets", head_sha=sha)
    assert (final["conclusion"], final["output"]["title"]) == ("failure", "3 problems")


async def test_columns_are_sent_only_for_an_annotation_on_one_line(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """GitHub refuses columns on a multi-line annotation, so they are left out there."""
    sha = fake_github.branch_sha("acme", "widgets", "main")
    run = await github_client.checks.create_check_run(
        repo=repo,
        name="bosun/policy",
        head_sha=sha,
        status=CheckStatus.IN_PROGRESS,
        title="Checking",
        summary="…",
    )
    spans = Annotation(
        path="a.yaml", start_line=2, end_line=4, start_column=1, end_column=9, message="m"
    )
    await github_client.checks.update_check_run(
        repo=repo, check_run_id=run.id, title="Done", summary="s", annotations=[spans]
    )
    [stored] = fake_github.annotations("acme", "widgets", run.id)
    assert "start_column" not in stored and "end_column" not in stored
    assert (stored["start_line"], stored["end_line"]) == (2, 4)
    with pytest.raises(ValueError, match="title and a summary"):
        await github_client.checks.update_check_run(
            repo=repo, check_run_id=run.id, summary="s", annotations=[spans]
        )


async def test_the_files_of_a_pull_request_are_listed_across_pages(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Every changed path comes back, added, modified or removed, however many pages."""
    fake_github.add_branch("acme", "widgets", "edit")
    for n in range(130):
        fake_github.set_file("acme", "widgets", f"src/f{n:03}.py", b"x\n", branch="edit")
    fake_github.set_file("acme", "widgets", ".bosun/policy.yaml", b"version: 1\n", branch="edit")
    fake_github.set_file("acme", "widgets", "README.md", None, branch="edit")
    number = fake_github.add_pull("acme", "widgets", head="edit")
    files = await github_client.pulls.list_pull_files(repo=repo, number=number)
    assert len(files) == 132
    assert {".bosun/policy.yaml", "README.md", "src/f129.py"} <= set(files)
    pages = [r for r in fake_github.requests if r.raw_path.endswith("/files")]
    assert len(pages) == 2


@pytest.mark.parametrize(
    ("status", "conclusion"),
    [
        (CheckStatus.COMPLETED, None),
        (CheckStatus.IN_PROGRESS, CheckConclusion.FAILURE),
        ("finished", None),
    ],
)
async def test_a_check_run_is_completed_exactly_when_it_has_a_conclusion(
    github_client: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    status: CheckStatus,
    conclusion: CheckConclusion | None,
) -> None:
    """A mismatch is a mistake in Bosun, refused before anything is sent."""
    with pytest.raises(ValueError):
        await github_client.checks.create_check_run(
            repo=repo,
            name="bosun/task",
            head_sha=fake_github.branch_sha("acme", "widgets", "main"),
            status=status,
            conclusion=conclusion,
            title="t",
            summary="s",
        )
    assert fake_github.requests == []


async def test_a_check_run_output_over_githubs_limit_is_cut(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A long summary is cut to 65535 characters (counted as UTF-8 bytes) and says so."""
    sha = fake_github.branch_sha("acme", "widgets", "main")
    long = "".join(f"line {i}: 💸 cost\n" for i in range(10_000))
    await github_client.checks.create_check_run(
        repo=repo,
        name="bosun/task",
        head_sha=sha,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.NEUTRAL,
        title="Long",
        summary=long,
        text=long,
    )
    [run] = fake_github.check_runs("acme", "widgets")
    for kept in (run["output"]["summary"], run["output"]["text"]):
        assert len(kept.encode()) <= 65535
        assert kept.endswith("*(truncated)*")
        assert long.startswith(kept.removesuffix(TRUNCATED))


def test_a_cut_never_splits_a_character_and_closes_an_open_code_fence() -> None:
    """What is kept renders: whole characters, whole lines, no code fence left open."""
    fenced = "```\n" + "line é\n" * 20
    assert fit_output(fenced, limit=64) == "```\n" + "line é\n" * 4 + "line é\n```" + TRUNCATED
    one_line = fit_output("é" * 100, limit=64)
    assert one_line == "é" * 22 + TRUNCATED
    assert len(one_line.encode()) <= 64
    assert fit_output("short") == "short"


# The status comment


async def test_the_status_comment_is_found_by_its_marker_only_if_bosun_wrote_it(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A person or another App quoting the marker is ignored, on whichever page it is."""
    marker = "<!-- bosun:status task=42 -->"
    issue = fake_github.add_issue("acme", "widgets")
    fake_github.add_comment("acme", "widgets", issue, f"> {marker}\n> queued", user="mallory")
    fake_github.add_comment("acme", "widgets", issue, f"{marker} copy", user="other[bot]")
    for i in range(120):
        fake_github.add_comment("acme", "widgets", issue, f"chatter {i}")
    assert (
        await github_client.issues.find_comment(repo=repo, issue_number=issue, marker=marker)
        is None
    )

    own = await github_client.issues.create_comment(
        repo=repo, issue_number=issue, body="queued", marker=marker
    )
    found = await github_client.issues.find_comment(repo=repo, issue_number=issue, marker=marker)
    assert found is not None and found.id == own and found.body == f"queued\n\n{marker}"
    other = "<!-- bosun:status task=43 -->"
    assert (
        await github_client.issues.find_comment(repo=repo, issue_number=issue, marker=other) is None
    )
