"""Pull requests: found by head branch, opened once, edited, reviewed, merged."""

from __future__ import annotations

from typing import Any

from bot.github.transport import Transport
from bot.github.types import (
    Merge,
    MergeMethod,
    PullRequest,
    PullState,
    Repo,
    Review,
    ReviewComment,
    given,
)

PULLS = "/repos/{owner}/{repo}/pulls{?state,head,per_page}"
PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
PULL_FILES = "/repos/{owner}/{repo}/pulls/{pull_number}/files{?per_page}"
REVIEWS = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews{?per_page}"
REVIEW_COMMENTS = (
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments{?per_page}"
)
MERGE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"


class Pulls:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get_pull(self, *, repo: Repo, number: int) -> PullRequest:
        return PullRequest.from_json(await self._t.get(repo, PULL, pull_number=number))

    async def list_pull_files(self, *, repo: Repo, number: int) -> list[str]:
        """Every path the pull request changes; a renamed file counts by its old name too.

        GitHub lists at most 3000 files of a pull request:
        https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
        """
        paths: list[str] = []
        for entry in await self._t.every_item(repo, PULL_FILES, pull_number=number):
            paths.append(str(entry["filename"]))
            if entry.get("previous_filename"):
                paths.append(str(entry["previous_filename"]))
        return paths

    async def list_reviews(self, *, repo: Repo, number: int) -> list[Review]:
        """Every review of the pull request, oldest first, dismissed ones included."""
        items = await self._t.every_item(repo, REVIEWS, pull_number=number)
        return [Review.from_json(item) for item in items]

    async def list_review_comments(
        self, *, repo: Repo, number: int, review_id: int
    ) -> list[ReviewComment]:
        """The inline comments one review made on the pull request's diff."""
        items = await self._t.every_item(
            repo, REVIEW_COMMENTS, pull_number=number, review_id=review_id
        )
        return [ReviewComment.from_json(item) for item in items]

    async def find_open_pull(self, *, repo: Repo, head_branch: str) -> PullRequest | None:
        """The open pull request from `head_branch` of this repository, if there is one."""
        data = await self._t.get(
            repo, PULLS, state="open", head=f"{repo.owner}:{head_branch}", per_page=100
        )
        pulls = [PullRequest.from_json(item) for item in data or []]
        return next((pull for pull in pulls if pull.head_ref == head_branch), None)

    async def create_pull(
        self, *, repo: Repo, title: str, head: str, base: str, body: str, draft: bool = False
    ) -> PullRequest:
        """Open a pull request from branch `head` of this repository into `base`; its identity
        is its head branch, so after a failure GitHub may have acted on, it is looked for."""

        async def opened() -> Any:
            found = await self._t.get(
                repo, PULLS, state="open", head=f"{repo.owner}:{head}", per_page=100
            )
            return next((item for item in found or [] if item["head"]["ref"] == head), None)

        data = {"title": title, "head": head, "base": base, "body": body, "draft": draft}
        return PullRequest.from_json(await self._t.create(repo, PULLS, data, find=opened))

    async def update_pull(
        self,
        *,
        repo: Repo,
        number: int,
        title: str | None = None,
        body: str | None = None,
        state: PullState | None = None,
    ) -> PullRequest:
        """Change what is given (None leaves a field as it is)."""
        data = given(title=title, body=body, state=None if state is None else PullState(state))
        return PullRequest.from_json(
            await self._t.send(repo, "patch", PULL, data, pull_number=number)
        )

    async def merge_pull(
        self, *, repo: Repo, number: int, sha: str, merge_method: MergeMethod
    ) -> Merge:
        """Merge the pull request if its head is still `sha`.

        GitHub refuses with 405 (not mergeable: conflicts, branch protection, a draft), 409
        (the head moved past `sha`) or 422; those come back as a GitHubError. Merging what is
        merged already is refused, never done twice, so the request is safe to send again.
        """
        # https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request
        data = {"sha": sha, "merge_method": MergeMethod(merge_method).value}
        return Merge.from_json(await self._t.send(repo, "put", MERGE, data, pull_number=number))
