"""The stand-in forge of `bosun demo`, driven by Bosun's own GitHub client and git."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from multidict import CIMultiDict

from bot.core.clock import SystemClock
from bot.core.errors import GitHubError
from bot.demo.forge import Forge
from bot.github.client import GitHubClient
from bot.github.types import CheckConclusion, CheckStatus, PullState, Repo
from bot.settings import Secret
from sandbox.workspace import Workspace, prepare
from tests.github_fixtures import APP_ID, new_app_key

INSTALLATION = 7
REPO = Repo(installation_id=INSTALLATION, owner="acme", name="app")
BRANCH = "bosun/fix-bug/1"
BOT = {"author_name": "bosun[bot]", "author_email": "bosun@bot.invalid"}
FILES = {
    "README.md": b"# app\n",
    ".bosun/policy.yaml": b"version: 1\n",
    ".bosun/tasks/fix-bug.yaml": b"description: Fix a bug\n",
    ".bosun/tasks/docs/extra.yaml": b"nested: true\n",
    "src/app.py": b"def add(a, b):\n    return a - b\n",
}


@pytest.fixture
async def forge(tmp_path: Path, github_app_key: tuple[str, str]) -> AsyncIterator[Forge]:
    forge = Forge(
        tmp_path / "forge",
        app_id=APP_ID,
        public_key=github_app_key[1],
        installation_id=INSTALLATION,
    )
    forge.create_repo("acme", "app", FILES)
    await forge.start()
    yield forge
    await forge.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(
    forge: Forge, session: aiohttp.ClientSession, github_app_key: tuple[str, str]
) -> GitHubClient:
    """Bosun's real GitHub client, pointed at the forge as it would be at api.github.com."""
    return GitHubClient(
        session=session,
        base_url=forge.url,
        app_id=APP_ID,
        private_key=Secret(github_app_key[0]),
        clock=SystemClock(),
        etag_cache={},
    )


class Api:
    """Raw HTTP to the forge with an installation token, for calls the client lacks."""

    def __init__(self, session: aiohttp.ClientSession, forge: Forge, private_key: str) -> None:
        self._session = session
        self._forge = forge
        self._private_key = private_key
        self.token = ""

    async def authenticate(self) -> None:
        status, _, body = await self.call(
            "POST",
            f"/app/installations/{INSTALLATION}/access_tokens",
            authorization=f"Bearer {app_jwt(self._private_key)}",
        )
        assert status == 201, body
        self.token = body["token"]

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        authorization: str | None = None,
        accept: str = "application/vnd.github+json",
    ) -> tuple[int, CIMultiDict[str], Any]:
        headers = {"Accept": accept}
        if authorization != "":  # "" sends no Authorization header at all
            headers["Authorization"] = authorization or f"token {self.token}"
        url = self._forge.url + path
        async with self._session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            json_type = response.content_type == "application/json"
            data = await response.json() if json_type else text
            return response.status, CIMultiDict(response.headers), data


@pytest.fixture
async def api(forge: Forge, session: aiohttp.ClientSession, github_app_key: tuple[str, str]) -> Api:
    api = Api(session, forge, github_app_key[0])
    await api.authenticate()
    return api


def app_jwt(private_key: str, *, iss: str = APP_ID, lifetime: int = 540) -> str:
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now + lifetime, "iss": iss}
    return jwt.encode(claims, private_key, algorithm="RS256")


@pytest.fixture
def workspace(forge: Forge, tmp_path: Path) -> Iterator[Workspace]:
    """Bosun's own workspace: a git clone of the forge's clone_url on the task's branch."""
    opened = prepare(
        clone_url=forge.clone_url("acme", "app"),
        token=None,
        base_branch="main",
        branch=BRANCH,
        root=tmp_path / "workspaces",
    )
    yield opened
    opened.cleanup()


async def push_change(workspace: Workspace, path: str, text: str) -> str:
    """Write, commit and push one file the way Bosun's worker does; returns the commit sha."""
    (workspace.path / path).write_text(text)
    sha = await asyncio.to_thread(workspace.commit, message=f"Change {path}", **BOT)
    assert sha is not None
    await asyncio.to_thread(workspace.push, token=None)
    return sha


async def open_pull(client: GitHubClient, forge: Forge | None = None) -> dict[str, Any]:
    """Open the pull request with Bosun's client; GitHub's JSON of it, as the forge keeps it."""
    opened = await client.pulls.create_pull(
        repo=REPO, title="Fix the bug", head=BRANCH, base="main", body="Closes #1"
    )
    listed = forge.pulls("acme", "app") if forge is not None else []
    shown = [pull for pull in listed if pull["number"] == opened.number]
    return shown[0] if shown else {"number": opened.number}


# Authentication


async def test_the_client_authenticates_as_the_app_and_its_installation(
    client: GitHubClient,
) -> None:
    """Bosun's client learns its App with the JWT, and reads with an installation token."""
    identity = await client.app_identity()
    assert identity is not None and (identity.id, identity.slug) == (int(APP_ID), "bosun")
    assert (await client.installation_token(installation_id=INSTALLATION)).startswith("ghs_")
    assert (await client.repos.get_repository(repo=REPO)).full_name == "acme/app"


async def test_a_jwt_signed_by_another_key_gets_no_token(api: Api) -> None:
    """Only the App whose public key the forge holds may mint installation tokens."""
    stranger = app_jwt(new_app_key()[0])
    path = f"/app/installations/{INSTALLATION}/access_tokens"
    status, _, body = await api.call("POST", path, authorization=f"Bearer {stranger}")
    assert (status, body["message"]) == (401, "A JSON web token could not be decoded")


async def test_a_jwt_for_another_app_or_installation_is_refused(
    api: Api, github_app_key: tuple[str, str]
) -> None:
    """The JWT must name the forge's App, and the token an installation the forge has."""
    other_app = app_jwt(github_app_key[0], iss="999")
    path = f"/app/installations/{INSTALLATION}/access_tokens"
    assert (await api.call("POST", path, authorization=f"Bearer {other_app}"))[0] == 401
    mine = f"Bearer {app_jwt(github_app_key[0])}"
    elsewhere = "/app/installations/8/access_tokens"
    assert (await api.call("POST", elsewhere, authorization=mine))[0] == 404


async def test_a_jwt_living_longer_than_ten_minutes_is_refused(
    api: Api, github_app_key: tuple[str, str]
) -> None:
    """As on GitHub, an App JWT may expire at most ten minutes ahead."""
    greedy = app_jwt(github_app_key[0], lifetime=3600)
    path = f"/app/installations/{INSTALLATION}/access_tokens"
    assert (await api.call("POST", path, authorization=f"Bearer {greedy}"))[0] == 401


async def test_repository_calls_need_an_installation_token(api: Api) -> None:
    """Without a token the forge answers 401 as GitHub does; with a made-up one too."""
    status, _, body = await api.call("GET", "/repos/acme/app", authorization="")
    assert (status, body["message"]) == (401, "Requires authentication")
    status, _, body = await api.call("GET", "/repos/acme/app", authorization="token ghs_madeup")
    assert (status, body["message"]) == (401, "Bad credentials")
    status, _, _ = await api.call("GET", "/repos/acme/app", authorization=f"Bearer {api.token}")
    assert status == 200


async def test_without_a_public_key_any_well_formed_jwt_naming_the_app_is_enough(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """A forge given no public key accepts any App key, but still wants a well-formed JWT."""
    forge = Forge(tmp_path / "forge", app_id=APP_ID, installation_id=INSTALLATION)
    forge.create_repo("acme", "app", FILES)
    await forge.start()
    try:
        client = GitHubClient(
            session=session,
            base_url=forge.url,
            app_id=APP_ID,
            private_key=Secret(new_app_key()[0]),
            clock=SystemClock(),
        )
        assert (await client.repos.get_repository(repo=REPO)).default_branch == "main"
        garbage = Api(session, forge, "")
        path = f"/app/installations/{INSTALLATION}/access_tokens"
        assert (await garbage.call("POST", path, authorization="Bearer not-a-jwt"))[0] == 401
    finally:
        await forge.stop()


# Repository, refs, contents, permissions


async def test_the_repository_clones_from_a_file_url(api: Api, forge: Forge) -> None:
    """clone_url is the bare repository's file:// URL; html_url is the forge's own page."""
    _, _, repository = await api.call("GET", "/repos/acme/app")
    assert repository["default_branch"] == "main"
    assert repository["clone_url"] == forge.clone_url("acme", "app")
    assert repository["clone_url"].startswith("file:///")
    assert repository["owner"]["login"] == "acme"
    assert repository["owner"]["type"] == "Organization"
    assert repository["html_url"] == f"{forge.url}/acme/app"
    assert repository["private"] is True


async def test_an_unknown_repository_is_not_found(client: GitHubClient) -> None:
    """A repository the forge lacks is a 404, as a private one is on GitHub."""
    with pytest.raises(GitHubError) as caught:
        await client.repos.get_repository(repo=Repo(INSTALLATION, "acme", "nope"))
    assert caught.value.status_code == 404


async def test_a_pushed_branch_is_seen_at_once(
    client: GitHubClient, forge: Forge, workspace: Workspace
) -> None:
    """`git push` to the clone_url is what the ref API reads next; slashes arrive as %2F."""
    main = await client.repos.get_branch_sha(repo=REPO, branch="main")
    assert main == forge.branches("acme", "app")["main"]
    with pytest.raises(GitHubError) as caught:
        await client.repos.get_branch_sha(repo=REPO, branch=BRANCH)
    assert caught.value.status_code == 404

    sha = await push_change(workspace, "src/app.py", "def add(a, b):\n    return a + b\n")
    assert await client.repos.get_branch_sha(repo=REPO, branch=BRANCH) == sha


async def test_files_are_read_from_git_at_a_ref(client: GitHubClient, workspace: Workspace) -> None:
    """Contents come from the commit a ref names; the default branch when none is given."""
    assert await client.repos.get_file(repo=REPO, path=".bosun/policy.yaml") == b"version: 1\n"
    assert await client.repos.get_file(repo=REPO, path="missing.txt") is None
    await push_change(workspace, "README.md", "# changed\n")
    assert await client.repos.get_file(repo=REPO, path="README.md", ref=BRANCH) == b"# changed\n"
    assert await client.repos.get_file(repo=REPO, path="README.md") == b"# app\n"
    assert await client.repos.get_file(repo=REPO, path="README.md", ref="no-such-ref") is None


async def test_directories_list_their_direct_entries(client: GitHubClient, api: Api) -> None:
    """A directory answers with its entries; the client keeps the files among them."""
    tasks = await client.repos.list_directory(repo=REPO, path=".bosun/tasks")
    assert tasks == [".bosun/tasks/fix-bug.yaml"]
    assert await client.repos.list_directory(repo=REPO, path="nowhere") == []
    with pytest.raises(GitHubError):
        await client.repos.get_file(repo=REPO, path=".bosun")
    _, _, listing = await api.call("GET", "/repos/acme/app/contents/.bosun%2Ftasks")
    assert {(e["name"], e["type"]) for e in listing} == {("fix-bug.yaml", "file"), ("docs", "dir")}
    _, _, root = await api.call("GET", "/repos/acme/app/contents")
    assert {e["path"] for e in root} == {".bosun", "README.md", "src"}


async def test_a_file_answer_is_shaped_like_githubs(api: Api) -> None:
    """A file carries base64 content wrapped at 60 columns, its blob sha and its URLs."""
    status, headers, body = await api.call("GET", "/repos/acme/app/contents/src%2Fapp.py?ref=main")
    assert status == 200 and headers["ETag"].startswith('W/"')
    assert (body["type"], body["encoding"], body["name"]) == ("file", "base64", "app.py")
    assert body["size"] == len(FILES["src/app.py"]) and len(body["sha"]) == 40
    assert body["content"].endswith("\n")
    status, _, missing = await api.call("GET", "/repos/acme/app/contents/nope.txt")
    assert (status, missing["message"]) == (404, "Not Found")


async def test_a_file_over_one_megabyte_comes_without_content(
    client: GitHubClient, forge: Forge
) -> None:
    """As on GitHub, contents over 1 MB carry no content, and the client says it is too large."""
    forge.commit("acme", "app", branch="main", files={"big.bin": b"x" * 1_100_000}, message="big")
    with pytest.raises(GitHubError, match="too large"):
        await client.repos.get_file(repo=REPO, path="big.bin")


async def test_a_read_the_client_already_has_answers_304(api: Api, forge: Forge) -> None:
    """Reads carry an ETag, and If-None-Match with it gets 304 with no body."""
    _, headers, _ = await api.call("GET", "/repos/acme/app")
    url = f"{forge.url}/repos/acme/app"
    auth = {"Authorization": f"token {api.token}", "If-None-Match": headers["ETag"]}
    async with aiohttp.ClientSession() as session, session.get(url, headers=auth) as response:
        assert response.status == 304


async def test_permissions_follow_roles(client: GitHubClient, forge: Forge) -> None:
    """A collaborator's role is their permission; the owner is admin; anyone else none."""
    forge.set_permission("acme", "app", "dev", "write")
    forge.set_permission("acme", "app", "lead", "maintain")
    assert await client.repos.permission_of(repo=REPO, username="dev") == "write"
    assert await client.repos.permission_of(repo=REPO, username="lead") == "maintain"
    assert await client.repos.permission_of(repo=REPO, username="acme") == "admin"
    assert await client.repos.permission_of(repo=REPO, username="passer-by") == "none"


# Issues, comments, labels, reactions


async def test_comments_are_created_edited_and_listed(client: GitHubClient, forge: Forge) -> None:
    """The App comments as its bot user, edits in place, and lists every comment in order."""
    number = forge.create_issue("acme", "app", "Adding is wrong", "2 + 2 is 0", "dev")
    forge.add_comment("acme", "app", number, "me too", "dev")
    comment_id = await client.issues.create_comment(
        repo=REPO, issue_number=number, body="queued", marker="<!-- bosun:test 1 -->"
    )
    await client.issues.update_comment(repo=REPO, comment_id=comment_id, body="running")
    comments = await client.issues.list_comments(repo=REPO, issue_number=number)
    assert [(c.author.login, c.body) for c in comments] == [
        ("dev", "me too"),
        ("bosun[bot]", "running"),
    ]
    assert comments[1].author.kind == "Bot"
    assert forge.comments("acme", "app", number)[1]["performed_via_github_app"]["slug"] == "bosun"
    assert forge.comments("acme", "app", number)[1]["id"] == comment_id


async def test_the_apps_own_comment_is_found_by_its_marker(
    client: GitHubClient, forge: Forge
) -> None:
    """Only the App's bot wrote a comment the client takes for its own; quotes do not count."""
    number = forge.create_issue("acme", "app", "Bug", "", "dev")
    forge.add_comment("acme", "app", number, "> <!-- bosun:status -->", "dev")
    mine = await client.issues.create_comment(
        repo=REPO, issue_number=number, body="<!-- bosun:status -->", marker="bosun:status"
    )
    found = await client.issues.find_comment(repo=REPO, issue_number=number, marker="bosun:status")
    assert found is not None and found.id == mine


async def test_long_comment_lists_are_paged_with_link_headers(
    client: GitHubClient, forge: Forge, api: Api
) -> None:
    """Lists page by per_page and page, and the Link header leads the client to the rest."""
    number = forge.create_issue("acme", "app", "Busy", "", "dev")
    for n in range(150):
        forge.add_comment("acme", "app", number, f"comment {n}", "dev")
    comments = await client.issues.list_comments(repo=REPO, issue_number=number)
    assert [c.body for c in comments] == [f"comment {n}" for n in range(150)]
    path = f"/repos/acme/app/issues/{number}/comments?per_page=50&page=2"
    _, headers, page = await api.call("GET", path)
    assert [c["body"] for c in page] == [f"comment {n}" for n in range(50, 100)]
    assert 'page=3>; rel="next"' in headers["Link"]
    assert 'page=1>; rel="prev"' in headers["Link"]


async def test_labels_are_added_and_removed(client: GitHubClient, forge: Forge) -> None:
    """Labels go on and come off; taking off a label that is not there is no error."""
    number = forge.create_issue("acme", "app", "Bug", "", "dev")
    await client.issues.add_labels(repo=REPO, issue_number=number, labels=["agent:fix-bug", "bug"])
    assert forge.labels("acme", "app", number) == ["agent:fix-bug", "bug"]
    await client.issues.remove_label(repo=REPO, issue_number=number, name="agent:fix-bug")
    await client.issues.remove_label(repo=REPO, issue_number=number, name="agent:fix-bug")
    assert forge.labels("acme", "app", number) == ["bug"]


async def test_reactions_land_once_and_must_be_known(
    client: GitHubClient, forge: Forge, api: Api
) -> None:
    """A reaction is recorded once per user and content; unknown content is a 422."""
    number = forge.create_issue("acme", "app", "Bug", "", "dev")
    comment_id = forge.add_comment("acme", "app", number, "/bosun status", "dev")["comment"]["id"]
    await client.issues.create_reaction_for_comment(
        repo=REPO, comment_id=comment_id, content="eyes"
    )
    await client.issues.create_reaction_for_comment(
        repo=REPO, comment_id=comment_id, content="eyes"
    )
    assert forge.comments("acme", "app", number)[0]["reactions"]["eyes"] == 1
    path = f"/repos/acme/app/issues/comments/{comment_id}/reactions"
    assert (await api.call("POST", path, {"content": "shrug"}))[0] == 422


async def test_an_issue_reads_back_as_github_shows_it(
    client: GitHubClient, api: Api, forge: Forge
) -> None:
    """An issue carries number, state, author, labels and its page's html_url."""
    number = forge.create_issue("acme", "app", "Adding is wrong", "2 + 2 is 0", "dev")
    forge.add_label("acme", "app", number, "agent:fix-bug", "dev")
    _, _, issue = await api.call("GET", f"/repos/acme/app/issues/{number}")
    assert (issue["number"], issue["state"], issue["title"]) == (number, "open", "Adding is wrong")
    assert issue["user"]["login"] == "dev" and issue["user"]["type"] == "User"
    assert [label["name"] for label in issue["labels"]] == ["agent:fix-bug"]
    assert issue["html_url"] == f"{forge.url}/acme/app/issues/{number}"
    assert "pull_request" not in issue
    assert (await api.call("GET", "/repos/acme/app/issues/99"))[0] == 404


async def test_a_label_makes_the_webhook_payload_bosun_reads(forge: Forge) -> None:
    """add_label returns an issues.labeled payload naming repository, installation, sender."""
    forge.set_permission("acme", "app", "dev", "write")
    number = forge.create_issue("acme", "app", "Adding is wrong", "2 + 2 is 0", "dev")
    payload = forge.add_label("acme", "app", number, "agent:fix-bug", "dev")
    assert Repo.from_payload(payload) == REPO
    assert payload["action"] == "labeled"
    assert payload["label"]["name"] == "agent:fix-bug"
    assert payload["issue"]["number"] == number
    assert payload["issue"]["labels"][0]["name"] == "agent:fix-bug"
    assert payload["sender"]["login"] == "dev"
    assert payload["repository"]["default_branch"] == "main"
    unlabeled = forge.remove_label("acme", "app", number, "agent:fix-bug", "dev")
    assert unlabeled["action"] == "unlabeled" and unlabeled["issue"]["labels"] == []


async def test_a_label_on_a_pull_request_makes_a_pull_request_payload(
    client: GitHubClient, forge: Forge, workspace: Workspace
) -> None:
    """Labelling a PR gives the pull_request event's payload, with the PR and its number."""
    await push_change(workspace, "src/app.py", "fixed\n")
    number = (await open_pull(client, forge))["number"]
    payload = forge.add_label("acme", "app", number, "agent:fix-bug", "dev")
    assert payload["number"] == number and payload["pull_request"]["head"]["ref"] == BRANCH
    assert "issue" not in payload


async def test_the_installation_payload_grants_the_repositories(forge: Forge) -> None:
    """installation_payload is an installation.created delivery for the forge's App."""
    payload = forge.installation_payload("acme")
    assert payload["installation"]["id"] == INSTALLATION
    assert payload["installation"]["account"]["login"] == "acme"
    assert [r["full_name"] for r in payload["repositories"]] == ["acme/app"]


# Pull requests


async def test_a_pushed_branch_becomes_a_pull_request_with_its_diff(
    client: GitHubClient, api: Api, forge: Forge, workspace: Workspace
) -> None:
    """A PR on a pushed branch shows the head commit, counts and a diff of the change."""
    issue = forge.create_issue("acme", "app", "Adding is wrong", "", "dev")
    sha = await push_change(workspace, "src/app.py", "def add(a, b):\n    return a + b\n")
    pull = await open_pull(client, forge)
    assert pull["number"] == issue + 1  # issues and PRs share one sequence
    assert (pull["head"]["ref"], pull["head"]["sha"], pull["base"]["ref"]) == (BRANCH, sha, "main")
    assert pull["user"]["login"] == "bosun[bot]"
    assert pull["html_url"] == f"{forge.url}/acme/app/pull/{pull['number']}"

    _, _, detail = await api.call("GET", f"/repos/acme/app/pulls/{pull['number']}")
    assert (detail["commits"], detail["additions"], detail["deletions"]) == (1, 1, 1)
    assert (detail["changed_files"], detail["mergeable"]) == (1, True)
    diff = forge.pull_diff("acme", "app", pull["number"])
    assert "-    return a - b\n+    return a + b" in diff
    path = f"/repos/acme/app/pulls/{pull['number']}"
    _, _, as_diff = await api.call("GET", path, accept="application/vnd.github.diff")
    assert as_diff == diff


async def test_the_head_sha_follows_later_pushes(
    client: GitHubClient, forge: Forge, workspace: Workspace
) -> None:
    """head.sha is the branch's tip when read, so a new push shows at once."""
    await push_change(workspace, "src/app.py", "def add(a, b):\n    return a + b\n")
    pull = await open_pull(client)
    second = await push_change(workspace, "NOTES.md", "fixed\n")
    assert (await client.pulls.get_pull(repo=REPO, number=pull["number"])).head_sha == second
    assert forge.pulls("acme", "app")[0]["head"]["sha"] == second


async def test_one_open_pull_request_per_head_branch(
    client: GitHubClient, workspace: Workspace
) -> None:
    """A second PR for the same head is a 422 'A pull request already exists', as on GitHub."""
    await push_change(workspace, "src/app.py", "fixed\n")
    await open_pull(client)
    with pytest.raises(GitHubError) as caught:
        await open_pull(client)
    assert caught.value.status_code == 422
    assert f"A pull request already exists for acme:{BRANCH}." in str(caught.value)


async def test_the_open_pull_request_is_found_by_its_head(
    client: GitHubClient, api: Api, workspace: Workspace
) -> None:
    """head=owner:branch and state filter the list, as Bosun finds its own PR again."""
    await push_change(workspace, "src/app.py", "fixed\n")
    pull = await open_pull(client)
    found = await client.pulls.find_open_pull(repo=REPO, head_branch=BRANCH)
    assert found is not None and found.number == pull["number"]
    assert await client.pulls.find_open_pull(repo=REPO, head_branch="other") is None
    _, _, closed = await api.call("GET", "/repos/acme/app/pulls?state=closed")
    assert closed == []


async def test_a_pull_request_needs_real_branches_and_commits(
    client: GitHubClient, workspace: Workspace
) -> None:
    """Head and base must be branches in the repository, with commits between them."""
    problems = []
    for head, base in (("no-such-branch", "main"), (BRANCH, "main"), (BRANCH, "nope")):
        if head == BRANCH:
            await asyncio.to_thread(workspace.push, token=None)  # the branch, at main
        with pytest.raises(GitHubError) as caught:
            await client.pulls.create_pull(repo=REPO, title="t", head=head, base=base, body="")
        problems.append((caught.value.status_code, str(caught.value)))
    assert problems[0] == (422, "GitHub 422: Validation Failed for 'head'")
    assert problems[1] == (
        422,
        f"GitHub 422: Validation Failed: 'No commits between main and {BRANCH}'",
    )
    assert problems[2] == (422, "GitHub 422: Validation Failed for 'base'")


async def test_a_pull_request_is_edited_closed_and_reopened(
    client: GitHubClient, api: Api, forge: Forge, workspace: Workspace
) -> None:
    """PATCH changes title and body, and closes and reopens, as GitHub's update does."""
    await push_change(workspace, "src/app.py", "fixed\n")
    number = (await open_pull(client))["number"]
    edited = await client.pulls.update_pull(repo=REPO, number=number, title="Fix add", body="Adds.")
    [shown] = forge.pulls("acme", "app")
    assert (shown["title"], shown["body"]) == ("Fix add", "Adds.")
    closed = await client.pulls.update_pull(repo=REPO, number=number, state=PullState.CLOSED)
    assert closed.state == "closed" and forge.pulls("acme", "app")[0]["closed_at"] is not None
    assert await client.pulls.find_open_pull(repo=REPO, head_branch=BRANCH) is None
    reopened = await client.pulls.update_pull(repo=REPO, number=number, state=PullState.OPEN)
    assert reopened.state == "open"
    _, _, as_issue = await api.call("GET", f"/repos/acme/app/issues/{number}")
    assert as_issue["pull_request"]["html_url"] == edited.html_url


async def test_deleting_the_head_branch_closes_its_pull_request(
    client: GitHubClient, api: Api, workspace: Workspace
) -> None:
    """Deleting a branch removes it from git; its open PR closes, as on GitHub."""
    await push_change(workspace, "src/app.py", "fixed\n")
    number = (await open_pull(client))["number"]
    await client.repos.delete_branch(repo=REPO, branch=BRANCH)
    with pytest.raises(GitHubError):
        await client.repos.get_branch_sha(repo=REPO, branch=BRANCH)
    assert (await client.pulls.get_pull(repo=REPO, number=number)).state == "closed"
    ref = "/repos/acme/app/git/refs/heads%2Fbosun%2Ffix-bug%2F1"
    status, _, again = await api.call("DELETE", ref)
    assert (status, again["message"]) == (422, "Reference does not exist")
    status, _, refusal = await api.call("DELETE", "/repos/acme/app/git/refs/heads%2Fmain")
    assert (status, refusal["message"]) == (422, "Cannot delete the default branch")


# Check runs


async def test_a_check_run_is_created_completed_and_found_by_name(
    client: GitHubClient, api: Api, forge: Forge, workspace: Workspace
) -> None:
    """One check run per name and head sha: created, completed with output, found again."""
    sha = await push_change(workspace, "src/app.py", "fixed\n")
    number = (await open_pull(client))["number"]
    created = await client.checks.create_check_run(
        repo=REPO,
        name="bosun/task",
        head_sha=sha,
        status=CheckStatus.IN_PROGRESS,
        title="Running",
        summary="started",
    )
    assert created.status == "in_progress"
    [stored] = forge.check_runs("acme", "app", sha)
    assert [p["number"] for p in stored["pull_requests"]] == [number]
    updated = await client.checks.update_check_run(
        repo=REPO,
        check_run_id=created.id,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.SUCCESS,
        title="Fixed",
        summary="1 attempt, $0.01",
        text="model: small",
    )
    assert (updated.status, updated.conclusion) == ("completed", "success")
    [stored] = forge.check_runs("acme", "app", sha)
    assert stored["completed_at"] is not None
    assert stored["html_url"] == f"{forge.url}/acme/app/runs/{created.id}"

    found = await client.checks.find_check_run(repo=REPO, head_sha=sha, name="bosun/task")
    assert found is not None and found.id == created.id
    assert stored["output"]["summary"] == "1 attempt, $0.01"
    assert await client.checks.find_check_run(repo=REPO, head_sha=sha, name="bosun/policy") is None
    by_branch = "/repos/acme/app/commits/bosun%2Ffix-bug%2F1/check-runs"
    assert (await api.call("GET", by_branch))[2]["total_count"] == 1
    assert forge.check_runs("acme", "app", sha)[0]["conclusion"] == "success"


async def test_latest_keeps_the_newest_run_of_each_name(
    client: GitHubClient, api: Api, workspace: Workspace
) -> None:
    """filter=latest (the default) shows one run per name, filter=all every run."""
    sha = await push_change(workspace, "src/app.py", "fixed\n")
    for name in ("bosun/task", "bosun/task", "bosun/policy"):
        await client.checks.create_check_run(
            repo=REPO, name=name, head_sha=sha, status=CheckStatus.QUEUED, title=name, summary="-"
        )
    _, _, latest = await api.call("GET", f"/repos/acme/app/commits/{sha}/check-runs")
    assert sorted(r["name"] for r in latest["check_runs"]) == ["bosun/policy", "bosun/task"]
    _, _, every = await api.call("GET", f"/repos/acme/app/commits/{sha}/check-runs?filter=all")
    assert every["total_count"] == 3


async def test_check_runs_are_validated_as_github_validates_them(api: Api, forge: Forge) -> None:
    """A known commit, a conclusion when completed, output with title and summary."""
    sha = forge.branches("acme", "app")["main"]
    runs = "/repos/acme/app/check-runs"
    unknown = {"name": "bosun/task", "head_sha": "0" * 40}
    assert (await api.call("POST", runs, unknown))[0] == 422
    no_conclusion = {"name": "bosun/task", "head_sha": sha, "status": "completed"}
    assert (await api.call("POST", runs, no_conclusion))[0] == 422
    no_summary = {"name": "bosun/task", "head_sha": sha, "output": {"title": "t"}}
    assert (await api.call("POST", runs, no_summary))[0] == 422
    assert (await api.call("GET", "/repos/acme/app/commits/nope/check-runs"))[0] == 422


async def test_annotations_accumulate_across_updates(api: Api, forge: Forge) -> None:
    """Each update's annotations are added to those already there, as GitHub does."""
    sha = forge.branches("acme", "app")["main"]
    note = {
        "path": ".bosun/policy.yaml",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "message": "unknown key",
    }
    output = {"title": "Policy", "summary": "1 problem", "annotations": [note]}
    body = {"name": "bosun/policy", "head_sha": sha, "output": output}
    _, _, run = await api.call("POST", "/repos/acme/app/check-runs", body)
    path = f"/repos/acme/app/check-runs/{run['id']}"
    _, _, updated = await api.call("PATCH", path, {"output": output})
    assert updated["output"]["annotations_count"] == 2
    _, _, listed = await api.call("GET", f"{path}/annotations")
    assert [a["message"] for a in listed] == ["unknown key", "unknown key"]


# Pages


async def test_the_pull_request_page_shows_diff_runs_and_comments(
    client: GitHubClient, forge: Forge, workspace: Workspace, session: aiohttp.ClientSession
) -> None:
    """The PR's html_url is a page of the forge, saying it is a stand-in, with the whole story."""
    sha = await push_change(workspace, "src/app.py", "def add(a, b):\n    return a + b\n")
    pull = await open_pull(client, forge)
    await client.checks.create_check_run(
        repo=REPO,
        name="bosun/task",
        head_sha=sha,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.SUCCESS,
        title="Fixed",
        summary="tokens 1200, $0.01",
    )
    await client.issues.create_comment(
        repo=REPO, issue_number=pull["number"], body="PR opened", marker="<!-- bosun:test 1 -->"
    )
    async with session.get(pull["html_url"]) as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    assert "local stand-in for GitHub" in page and "bosun demo" in page
    for part in ("bosun/task", "success", "PR opened", "+    return a + b"):
        assert part in page
    async with session.get(pull["diff_url"]) as response:
        assert await response.text() == forge.pull_diff("acme", "app", pull["number"])
    text = forge.pull_text("acme", "app", pull["number"])
    assert "bosun/task: success" in text and "PR opened" in text
    async with session.get(f"{forge.url}/acme/app/pull/99") as response:
        assert response.status == 404


async def test_every_html_url_the_api_gives_is_served(
    api: Api, forge: Forge, session: aiohttp.ClientSession
) -> None:
    """Issue, comment, repository, check-run and file links lead to forge pages."""
    number = forge.create_issue("acme", "app", "Bug", "details", "dev")
    comment = forge.add_comment("acme", "app", number, "hello", "dev")["comment"]
    sha = forge.branches("acme", "app")["main"]
    body = {"name": "bosun/policy", "head_sha": sha, "conclusion": "neutral"}
    _, _, run = await api.call("POST", "/repos/acme/app/check-runs", body)
    _, _, readme = await api.call("GET", "/repos/acme/app/contents/README.md")
    urls = [f"{forge.url}/", comment["html_url"], run["html_url"], readme["html_url"]]
    urls += [run["app"]["html_url"], comment["user"]["html_url"]]
    urls += [f"{forge.url}/acme/app", f"{forge.url}/acme", readme["download_url"]]
    for url in urls:
        async with session.get(url) as response:
            assert response.status == 200, url
    async with session.get(readme["download_url"]) as response:
        assert await response.read() == FILES["README.md"]
