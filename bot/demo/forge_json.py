"""GitHub's REST and webhook shapes for the local stand-in forge of `bosun demo`."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from bot.demo.forge_git import DiffStats, TreeEntry
from bot.demo.forge_state import REACTIONS, CheckRun, Comment, ForgeRepo, Issue, Pull

DOCS = "https://docs.github.com/rest"
MAX_CONTENT_BYTES = 1024 * 1024  # larger files come without content, as on GitHub
# GitHub's `permission` predates maintain and triage and folds them into write and read.
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read"}


@dataclass(frozen=True)
class PullDetail:
    """What only a single pull request's answer carries, read from git."""

    stats: DiffStats
    mergeable: bool | None


@dataclass(frozen=True)
class App:
    id: int
    slug: str
    installation_id: int


class Shapes:
    """Turns the forge's records into the JSON GitHub answers with, URLs on `base`."""

    def __init__(self, *, app: App, base: str = "") -> None:
        self.app = app
        self.base = base
        self.organizations: set[str] = set()

    @property
    def bot_login(self) -> str:
        return f"{self.app.slug}[bot]"

    def user(self, login: str) -> dict[str, Any]:
        """GitHub's simple-user object; a `[bot]` login is a Bot, a repository owner an org."""
        if login.endswith("[bot]"):
            kind = "Bot"
        else:
            kind = "Organization" if login in self.organizations else "User"
        user_id = stable_id(login)
        url = f"{self.base}/users/{quote(login, safe='')}"
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "avatar_url": "",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.base}/{quote(login, safe='')}",
            "repos_url": f"{url}/repos",
            "type": kind,
            "site_admin": False,
        }

    def app_json(self) -> dict[str, Any]:
        return {
            "id": self.app.id,
            "slug": self.app.slug,
            "node_id": f"A_{self.app.id}",
            "name": self.app.slug,
            "owner": None,
            "html_url": f"{self.base}/apps/{self.app.slug}",
            "permissions": {"checks": "write", "contents": "write", "issues": "write"},
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
        }

    def installation(self) -> dict[str, Any]:
        return {"id": self.app.installation_id, "node_id": f"I_{self.app.installation_id}"}

    def repository(self, repo: ForgeRepo) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        created = timestamp(repo.created_at)
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user(repo.owner),
            "private": True,
            "visibility": "private",
            "html_url": f"{self.base}/{repo.full_name}",
            "description": "A repository on the local stand-in forge of `bosun demo`",
            "fork": False,
            "url": api,
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "clone_url": repo.clone_url,
            "default_branch": repo.default_branch,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "has_issues": True,
            "archived": False,
            "disabled": False,
            "topics": [],
            "created_at": created,
            "updated_at": created,
            "pushed_at": created,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True},
        }

    def label(self, repo: ForgeRepo, name: str) -> dict[str, Any]:
        label_id = repo.labels[name]
        return {
            "id": label_id,
            "node_id": f"LA_{label_id}",
            "url": f"{self.base}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    def issue(self, repo: ForgeRepo, issue: Issue) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        html_url = f"{self.base}/{repo.full_name}/{kind}/{issue.number}"
        body: dict[str, Any] = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "url": api,
            "repository_url": f"{self.base}/repos/{repo.full_name}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "html_url": html_url,
            "number": issue.number,
            "state": issue.state,
            "state_reason": "completed" if issue.state == "closed" else None,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self.label(repo, name) for name in issue.labels],
            "assignee": None,
            "assignees": [],
            "locked": False,
            "comments": len(repo.comments_on(issue.number)),
            "created_at": timestamp(issue.created_at),
            "updated_at": timestamp(issue.updated_at),
            "closed_at": timestamp(issue.closed_at) if issue.closed_at else None,
            "author_association": association(repo, issue.user),
        }
        if issue.pull:
            body["pull_request"] = {
                "url": f"{self.base}/repos/{repo.full_name}/pulls/{issue.number}",
                "html_url": html_url,
                "diff_url": f"{html_url}.diff",
                "patch_url": f"{html_url}.diff",
                "merged_at": None,
            }
        return body

    def comment(self, repo: ForgeRepo, comment: Comment) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/issues/comments/{comment.id}"
        page = f"{self.base}/{repo.full_name}/issues/{comment.issue_number}"
        contents = [content for _, content in comment.reactions]
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": url,
            "html_url": f"{page}#issuecomment-{comment.id}",
            "issue_url": f"{self.base}/repos/{repo.full_name}/issues/{comment.issue_number}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": timestamp(comment.created_at),
            "updated_at": timestamp(comment.updated_at),
            "author_association": association(repo, comment.user),
            "performed_via_github_app": self.app_json() if comment.via_app else None,
            "reactions": {"url": f"{url}/reactions", "total_count": len(contents)}
            | {name: contents.count(name) for name in REACTIONS},
        }

    def reaction(self, comment: Comment, content: str, at: datetime) -> dict[str, Any]:
        reaction_id = stable_id(f"{comment.id}:{content}")
        return {
            "id": reaction_id,
            "node_id": f"REA_{reaction_id}",
            "user": self.user(self.bot_login),
            "content": content,
            "created_at": timestamp(at),
        }

    def pull(
        self, repo: ForgeRepo, issue: Issue, detail: PullDetail | None = None
    ) -> dict[str, Any]:
        """A pull request as listed; with `detail`, as GitHub answers for a single one."""
        assert issue.pull is not None
        pull = issue.pull
        api = f"{self.base}/repos/{repo.full_name}"
        html_url = f"{self.base}/{repo.full_name}/pull/{issue.number}"
        body: dict[str, Any] = {
            "url": f"{api}/pulls/{issue.number}",
            "id": issue.id,
            "node_id": f"PR_{issue.id}",
            "html_url": html_url,
            "diff_url": f"{html_url}.diff",
            "patch_url": f"{html_url}.diff",
            "issue_url": f"{api}/issues/{issue.number}",
            "comments_url": f"{api}/issues/{issue.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": issue.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": self.user(issue.user),
            "body": issue.body,
            "labels": [self.label(repo, name) for name in issue.labels],
            "created_at": timestamp(issue.created_at),
            "updated_at": timestamp(issue.updated_at),
            "closed_at": timestamp(issue.closed_at) if issue.closed_at else None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._branch(repo, pull.head, pull.head_sha),
            "base": self._branch(repo, pull.base, pull.base_sha),
            "author_association": association(repo, issue.user),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if detail is not None:
            body |= {
                "merged": False,
                "mergeable": detail.mergeable,
                "mergeable_state": _mergeable_state(detail.mergeable, pull),
                "merged_by": None,
                "comments": len(repo.comments_on(issue.number)),
                "review_comments": 0,
                "maintainer_can_modify": pull.maintainer_can_modify,
                "commits": detail.stats.commits,
                "additions": detail.stats.additions,
                "deletions": detail.stats.deletions,
                "changed_files": detail.stats.changed_files,
            }
        return body

    def _branch(self, repo: ForgeRepo, branch: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": self.user(repo.owner),
            "repo": self.repository(repo),
        }

    def check_run(self, repo: ForgeRepo, run: CheckRun) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/check-runs/{run.id}"
        html_url = f"{self.base}/{repo.full_name}/runs/{run.id}"
        pulls = [
            self._pull_ref(repo, issue, issue.pull)
            for issue in repo.issues.values()
            if issue.pull and issue.state == "open" and issue.pull.head_sha == run.head_sha
        ]
        return {
            "id": run.id,
            "node_id": f"CR_{run.id}",
            "head_sha": run.head_sha,
            "external_id": run.external_id,
            "url": url,
            "html_url": html_url,
            "details_url": run.details_url or html_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": timestamp(run.started_at) if run.started_at else None,
            "completed_at": timestamp(run.completed_at) if run.completed_at else None,
            "output": {
                "title": run.output.get("title"),
                "summary": run.output.get("summary"),
                "text": run.output.get("text"),
                "annotations_count": len(run.annotations),
                "annotations_url": f"{url}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": stable_id(f"{repo.full_name}:{run.head_sha}")},
            "app": self.app_json(),
            "pull_requests": pulls,
        }

    def _pull_ref(self, repo: ForgeRepo, issue: Issue, pull: Pull) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}"
        small = {"id": repo.id, "name": repo.name, "url": api}
        return {
            "id": issue.id,
            "number": issue.number,
            "url": f"{api}/pulls/{issue.number}",
            "head": {"ref": pull.head, "sha": pull.head_sha, "repo": small},
            "base": {"ref": pull.base, "sha": pull.base_sha, "repo": small},
        }

    def ref(self, repo: ForgeRepo, name: str, sha: str, kind: str) -> dict[str, Any]:
        api = f"{self.base}/repos/{repo.full_name}/git"
        plural = "commits" if kind == "commit" else f"{kind}s"
        return {
            "ref": f"refs/{name}",
            "node_id": f"REF_{stable_id(repo.full_name + name)}",
            "url": f"{api}/refs/{quote(name)}",
            "object": {"type": kind, "sha": sha, "url": f"{api}/{plural}/{sha}"},
        }

    def entry(self, repo: ForgeRepo, ref: str, commit: str, item: TreeEntry) -> dict[str, Any]:
        """A directory listing's entry; its pages are pinned to the commit `ref` named."""
        api = f"{self.base}/repos/{repo.full_name}"
        git_kind = "trees" if item.kind == "dir" else "blobs"
        url = f"{api}/contents/{quote(item.path)}?{urlencode({'ref': ref})}"
        git_url = f"{api}/git/{git_kind}/{item.sha}"
        page = f"{self.base}/{repo.full_name}/{'tree' if item.kind == 'dir' else 'blob'}"
        html_url = f"{page}/{commit}/{quote(item.path)}"
        raw = f"{self.base}/{repo.full_name}/raw/{commit}/{quote(item.path)}"
        return {
            "type": item.kind,
            "size": item.size,
            "name": item.name,
            "path": item.path,
            "sha": item.sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": raw if item.kind == "file" else None,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }

    def file(
        self, repo: ForgeRepo, ref: str, commit: str, item: TreeEntry, content: bytes
    ) -> dict[str, Any]:
        if len(content) > MAX_CONTENT_BYTES:
            # https://docs.github.com/en/rest/repos/contents#get-repository-content
            return self.entry(repo, ref, commit, item) | {"content": "", "encoding": "none"}
        encoded = base64.b64encode(content).decode()
        # GitHub wraps the base64 text at 60 characters.
        lines = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
        text = "\n".join(lines) + "\n" if lines else ""
        return self.entry(repo, ref, commit, item) | {"content": text, "encoding": "base64"}


def permission_body(shapes: Shapes, login: str, role: str) -> dict[str, Any]:
    user = shapes.user(login) | {"role_name": role}
    return {"permission": LEGACY_PERMISSION.get(role, role), "role_name": role, "user": user}


def association(repo: ForgeRepo, login: str) -> str:
    if login == repo.owner:
        return "OWNER"
    return "COLLABORATOR" if login in repo.collaborators else "NONE"


def error_body(
    status: int, message: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return body


def _mergeable_state(mergeable: bool | None, pull: Pull) -> str:
    if mergeable is None:
        return "unknown"
    if not mergeable:
        return "dirty"
    return "draft" if pull.draft else "clean"


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_id(text: str) -> int:
    return 1_000_000 + int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) % 100_000_000
