"""Repositories: metadata, branches, files, permissions and commit statuses."""

from __future__ import annotations

import base64

from bot.core.errors import GitHubError
from bot.github.transport import Transport
from bot.github.types import CombinedStatus, Repo, Repository

REPOSITORY = "/repos/{owner}/{repo}"
PERMISSION = "/repos/{owner}/{repo}/collaborators/{username}/permission"
BRANCH_REF = "/repos/{owner}/{repo}/git/ref/{ref}"
REF = "/repos/{owner}/{repo}/git/refs/{ref}"
CONTENTS = "/repos/{owner}/{repo}/contents/{path}{?ref}"
COMBINED_STATUS = "/repos/{owner}/{repo}/commits/{ref}/status{?per_page}"
ROLES = frozenset({"admin", "maintain", "write", "triage", "read"})


class FileTooLarge(GitHubError):
    """A file GitHub will not send inline (over 1 MB); `size` is its length in bytes."""

    def __init__(self, message: str, *, path: str, size: int) -> None:
        super().__init__(message, status_code=200)
        self.path = path
        self.size = size


class Repos:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get_repository(self, *, repo: Repo) -> Repository:
        return Repository.from_json(await self._t.get(repo, REPOSITORY))

    async def clone_url(self, *, repo: Repo) -> str:
        """The URL git clones the repository from; credentials travel separately."""
        return (await self.get_repository(repo=repo)).clone_url

    async def permission_of(self, *, repo: Repo, username: str) -> str:
        """admin, maintain, write, triage, read, or none for someone who is no collaborator."""
        data = await self._t.get_or_none(repo, PERMISSION, username=username)
        if not isinstance(data, dict):
            return "none"
        role = data.get("role_name")
        # A custom repository role has its own name; `permission` gives its base role.
        return str(role) if role in ROLES else str(data.get("permission") or "none")

    async def get_branch_sha(self, *, repo: Repo, branch: str) -> str:
        data = await self._t.get(repo, BRANCH_REF, ref=f"heads/{branch}")
        try:
            return str(data["object"]["sha"])
        except (KeyError, TypeError) as exc:
            raise GitHubError(f"the ref of {branch} names no commit", status_code=200) from exc

    async def get_file(self, *, repo: Repo, path: str, ref: str | None = None) -> bytes | None:
        """The file's bytes at `ref` (default branch if None), or None if there is no such path."""
        data = await self._t.get_or_none(repo, CONTENTS, path=path, ref=ref)
        if data is None:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise GitHubError(f"{repo.full_name}:{path} is not a file", status_code=200)
        if data.get("encoding") != "base64":
            # Files over 1 MB come back without content:
            # https://docs.github.com/en/rest/repos/contents#get-repository-content
            raise FileTooLarge(
                f"{repo.full_name}:{path} is too large to read",
                path=path,
                size=int(data.get("size") or 0),
            )
        return base64.b64decode(data["content"])

    async def list_directory(self, *, repo: Repo, path: str, ref: str | None = None) -> list[str]:
        """Paths of the files directly in a directory; [] if there is no such directory."""
        data = await self._t.get_or_none(repo, CONTENTS, path=path, ref=ref)
        if data is None:
            return []
        if not isinstance(data, list):
            raise GitHubError(f"{repo.full_name}:{path} is not a directory", status_code=200)
        return [str(entry["path"]) for entry in data if entry.get("type") == "file"]

    async def delete_branch(self, *, repo: Repo, branch: str) -> bool:
        """Delete a branch; one that is not there is already gone (False: nothing deleted).

        GitHub answers 422 both for a missing ref and for the default branch, which it
        refuses to delete: either way nothing was deleted, which is what a rollback needs.
        """
        # https://docs.github.com/en/rest/git/refs#delete-a-reference
        return await self._t.delete(repo, REF, gone=(404, 422), ref=f"heads/{branch}")

    async def combined_status(self, *, repo: Repo, ref: str) -> CombinedStatus:
        """The commit statuses of `ref` rolled into one state."""
        # https://docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-reference
        data = await self._t.get(repo, COMBINED_STATUS, ref=ref, per_page=100)
        return CombinedStatus.from_json(data)
