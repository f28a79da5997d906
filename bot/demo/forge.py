"""A local stand-in for GitHub used by `bosun demo`: GitHub's REST API over real bare git repos."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.core.clock import Clock, SystemClock
from bot.demo import forge_pages
from bot.demo.forge_api import RepositoryApi, read_content
from bot.demo.forge_checks import CheckRunApi
from bot.demo.forge_git import BareRepo, Identity
from bot.demo.forge_http import ApiContext, Auth, conditional, github_errors
from bot.demo.forge_json import App, Shapes, timestamp
from bot.demo.forge_pulls import PullApi
from bot.demo.forge_state import ROLES, ForgeRepo, ForgeState, Issue, pulls_in, refresh

MAINTAINER = Identity("Demo Maintainer", "maintainer@bosun-demo.invalid")
# Path segments of the forge's own URLs, which an owner of that name would shadow.
RESERVED_OWNERS = frozenset({"app", "apps", "repos", "users"})


class Forge:
    """A local stand-in for GitHub, run by `bosun demo`; it is not GitHub and calls no network.

    It answers the part of GitHub's REST API that Bosun uses, in GitHub's URL shapes, on
    127.0.0.1 in the caller's event loop. Branches and files live in real bare git
    repositories under `root`, whose `file://` URLs are the repositories' `clone_url`: a
    `git push` there is what the API reads next. Issues, pull requests, comments, labels and
    check runs are kept in memory; pages at each `html_url` show them to people.

    Auth is GitHub App auth: `POST /app/installations/{id}/access_tokens` takes the App's
    JWT (RS256, checked against `public_key`; with no key, any well-formed JWT naming
    `app_id`) and returns an installation token, which every `/repos/...` call must carry.
    Git itself (the `file://` remote) is not authenticated.

    Seed and inspect it with the plain methods below, from the event loop's thread; those
    that read git run it in place (milliseconds), while API requests run git off the loop.
    Start it before building webhook payloads, whose URLs name the forge's address.
    """

    def __init__(
        self,
        root: Path,
        *,
        app_id: str = "1",
        public_key: str | None = None,
        installation_id: int = 1,
        app_slug: str = "bosun",
        clock: Clock | None = None,
    ) -> None:
        self.root = root
        clock = clock or SystemClock()
        self._state = ForgeState(clock=clock)
        app = App(int(app_id) if app_id.isdigit() else 1, app_slug, installation_id)
        self._shapes = Shapes(app=app)
        self._auth = Auth(
            app_id=app_id, public_key=public_key, installation_id=installation_id, clock=clock
        )
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The forge's root, for the API and the pages alike; empty until `start`."""
        return self._shapes.base

    @property
    def bot_login(self) -> str:
        """The login the App's own comments, reactions and pull requests show."""
        return self._shapes.bot_login

    # Life cycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host` (a free port unless given) in the running loop; returns the URL."""
        context = ApiContext(self._state, self._shapes, self._auth)
        app = web.Application(middlewares=[github_errors, conditional])
        for api in (RepositoryApi(context), PullApi(context), CheckRunApi(context)):
            app.add_routes(api.routes())
        forge_pages.add_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._shapes.base = f"http://{bound_host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Seeding

    def create_repo(
        self, owner: str, name: str, files: Mapping[str, bytes], default_branch: str = "main"
    ) -> str:
        """A repository whose default branch holds `files` in one commit; returns its sha."""
        if owner in RESERVED_OWNERS or not owner or not name or "/" in owner + name:
            raise ValueError(f"{owner}/{name} cannot be a repository of the forge")
        if (owner, name) in self._state.repos:
            raise ValueError(f"{owner}/{name} exists already")
        git = BareRepo.init(self.root / owner / f"{name}.git", default_branch=default_branch)
        sha = git.commit(
            branch=default_branch, files=files, message="Initial commit", author=MAINTAINER
        )
        self._state.repos[owner, name] = ForgeRepo(
            id=self._state.next_id(),
            owner=owner,
            name=name,
            git=git,
            default_branch=default_branch,
            created_at=self._state.clock.now(),
            collaborators={owner: "admin"},
        )
        self._shapes.organizations.add(owner)
        return sha

    def commit(
        self,
        owner: str,
        name: str,
        *,
        branch: str,
        files: Mapping[str, bytes | None],
        message: str,
    ) -> str:
        """Commit as the Demo Maintainer (None deletes a path); a new branch starts at default."""
        repo = self._state.repo(owner, name)
        return repo.git.commit(
            branch=branch,
            files=files,
            message=message,
            author=MAINTAINER,
            start=repo.default_branch,
        )

    def set_permission(self, owner: str, name: str, user: str, role: str) -> None:
        """The user's role on the repository: read, triage, write, maintain or admin."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self._state.repo(owner, name).collaborators[user] = role

    def create_issue(self, owner: str, name: str, title: str, body: str, user: str) -> int:
        repo = self._state.repo(owner, name)
        return self._state.new_issue(repo, title=title, body=body, user=user).number

    def add_label(
        self, owner: str, name: str, number: int, label: str, sender: str
    ) -> dict[str, Any]:
        """Label an issue as `sender`; returns the `issues` webhook payload (action labeled).

        On a pull request it is the payload of the `pull_request` event, as GitHub sends.
        """
        repo, issue = self._state.issue(owner, name, number)
        self._state.label(repo, issue, label)
        return self._labeled(repo, issue, label, sender, action="labeled")

    def remove_label(
        self, owner: str, name: str, number: int, label: str, sender: str
    ) -> dict[str, Any]:
        """Take a label off as `sender`; returns the webhook payload (action unlabeled)."""
        repo, issue = self._state.issue(owner, name, number)
        if not self._state.unlabel(issue, label):
            raise ValueError(f"{repo.full_name}#{number} has no label {label!r}")
        return self._labeled(repo, issue, label, sender, action="unlabeled")

    def add_comment(
        self, owner: str, name: str, number: int, body: str, user: str
    ) -> dict[str, Any]:
        """Comment as `user`; returns the `issue_comment` webhook payload (action created)."""
        repo, issue = self._state.issue(owner, name, number)
        comment = self._state.new_comment(repo, issue, body, user=user, via_app=False)
        return {
            "action": "created",
            "issue": self._shapes.issue(repo, issue),
            "comment": self._shapes.comment(repo, comment),
            **self._envelope(repo, user),
        }

    def installation_payload(self, sender: str) -> dict[str, Any]:
        """The `installation` webhook payload (action created) granting every repository."""
        repos = list(self._state.repos.values())
        account = self._shapes.user(repos[0].owner if repos else sender)
        now = timestamp(self._state.clock.now())
        app = self._shapes.app_json()
        installation = self._shapes.installation() | {
            "account": account,
            "app_id": app["id"],
            "app_slug": app["slug"],
            "target_type": account["type"],
            "repository_selection": "selected",
            "permissions": app["permissions"],
            "events": app["events"],
            "created_at": now,
            "updated_at": now,
        }
        granted = [
            {"id": r.id, "node_id": f"R_{r.id}", "name": r.name, "full_name": r.full_name}
            | {"private": True}
            for r in repos
        ]
        return {
            "action": "created",
            "installation": installation,
            "repositories": granted,
            "sender": self._shapes.user(sender),
        }

    # Inspection: the same shapes the API answers with

    def repositories(self) -> list[str]:
        return [repo.full_name for repo in self._state.repos.values()]

    def clone_url(self, owner: str, name: str) -> str:
        return self._state.repo(owner, name).clone_url

    def branches(self, owner: str, name: str) -> dict[str, str]:
        """Branch name to tip sha, read from git."""
        return self._state.repo(owner, name).git.branches()

    def read_file(self, owner: str, name: str, path: str, ref: str | None = None) -> bytes | None:
        """A file's bytes at `ref` (the default branch if None); None if it is no file there."""
        repo = self._state.repo(owner, name)
        content = read_content(repo.git, ref or repo.default_branch, path.strip("/"))
        return content.data if content and content.entry.kind == "file" else None

    def issue(self, owner: str, name: str, number: int) -> dict[str, Any]:
        return self._shapes.issue(*self._state.issue(owner, name, number))

    def issues(self, owner: str, name: str) -> list[dict[str, Any]]:
        """Issues and pull requests, newest first, as GitHub lists a repository's issues."""
        repo = self._state.repo(owner, name)
        newest = sorted(repo.issues.values(), key=lambda i: -i.number)
        return [self._shapes.issue(repo, issue) for issue in newest]

    def labels(self, owner: str, name: str, number: int) -> list[str]:
        return list(self._state.issue(owner, name, number)[1].labels)

    def comments(self, owner: str, name: str, number: int) -> list[dict[str, Any]]:
        repo, issue = self._state.issue(owner, name, number)
        return [self._shapes.comment(repo, c) for c in repo.comments_on(issue.number)]

    def pulls(self, owner: str, name: str, state: str = "all") -> list[dict[str, Any]]:
        """Pull requests in `state` (open, closed, all), newest first, heads read from git."""
        repo = self._state.repo(owner, name)
        refresh(repo, repo.git.branches())
        return [self._shapes.pull(repo, issue) for issue in pulls_in(repo, state)]

    def check_runs(
        self, owner: str, name: str, head_sha: str | None = None
    ) -> list[dict[str, Any]]:
        """Every check run of the repository (or of one commit), newest first."""
        repo = self._state.repo(owner, name)
        runs = [r for r in repo.check_runs.values() if head_sha in (None, r.head_sha)]
        return [self._shapes.check_run(repo, run) for run in sorted(runs, key=lambda r: -r.id)]

    def pull_diff(self, owner: str, name: str, number: int) -> str:
        """The pull request's unified diff: what its head changes since it left its base."""
        repo, issue = self._state.issue(owner, name, number)
        if issue.pull is None:
            raise KeyError(f"{repo.full_name}#{number} is not a pull request")
        refresh(repo, repo.git.branches())
        return repo.git.diff(issue.pull.base_sha, issue.pull.head_sha)

    def pull_text(self, owner: str, name: str, number: int) -> str:
        """The pull request as plain text for a terminal: state, check runs, comments, diff."""
        return forge_pages.pull_text(self, owner, name, number)

    # Webhook payloads

    def _labeled(
        self, repo: ForgeRepo, issue: Issue, label: str, sender: str, *, action: str
    ) -> dict[str, Any]:
        self._state.known_label(repo, label)
        subject = (
            {"number": issue.number, "pull_request": self._shapes.pull(repo, issue)}
            if issue.pull
            else {"issue": self._shapes.issue(repo, issue)}
        )
        label_json = self._shapes.label(repo, label)
        return {"action": action, **subject, "label": label_json, **self._envelope(repo, sender)}

    def _envelope(self, repo: ForgeRepo, sender: str) -> dict[str, Any]:
        return {
            "repository": self._shapes.repository(repo),
            "sender": self._shapes.user(sender),
            "installation": self._shapes.installation(),
        }
