"""Issues: the issue itself, comments (found again by hidden markers), labels, reactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.github.transport import Transport
from bot.github.types import AppIdentity, Comment, Issue, Repo

COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
COMMENT_REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
LABEL = "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"
ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}"


class Issues:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def get_issue(self, *, repo: Repo, number: int) -> Issue:
        """An issue; a pull request is one too (`is_pull_request`)."""
        return Issue.from_json(await self._t.get(repo, ISSUE, issue_number=number))

    async def list_comments(self, *, repo: Repo, issue_number: int) -> list[Comment]:
        items = await self._t.every_item(repo, COMMENTS, issue_number=issue_number)
        return [Comment.from_json(item) for item in items]

    async def find_comment(self, *, repo: Repo, issue_number: int, marker: str) -> Comment | None:
        """The first comment by the App's own bot account whose body contains `marker`.

        Anyone may quote the hidden marker; a comment by a person or by another App is never
        taken for Bosun's own, so it is never the one Bosun edits.
        """
        if not marker:
            raise ValueError("a marker must not be empty")
        identity = await self._t.app_identity()

        def wanted(item: Any) -> bool:
            comment = Comment.from_json(item)
            return marker in comment.body and _by_app(comment, identity)

        found = await self._t.first_item(repo, COMMENTS, wanted, issue_number=issue_number)
        return None if found is None else Comment.from_json(found)

    async def create_comment(self, *, repo: Repo, issue_number: int, body: str, marker: str) -> int:
        """Post a comment that `marker` (hidden, in the body) names; returns its id. After a
        failure GitHub may have acted on, the comment is looked for before it is posted again."""
        if marker not in body:
            body = f"{body}\n\n{marker}"

        async def posted() -> Any:
            found = await self.find_comment(repo=repo, issue_number=issue_number, marker=marker)
            return None if found is None else {"id": found.id}

        data = await self._t.create(
            repo, COMMENTS, {"body": body}, find=posted, issue_number=issue_number
        )
        return int(data["id"])

    async def update_comment(self, *, repo: Repo, comment_id: int, body: str) -> None:
        await self._t.send(repo, "patch", COMMENT, {"body": body}, comment_id=comment_id)

    async def add_labels(self, *, repo: Repo, issue_number: int, labels: Sequence[str]) -> None:
        # Adding a label that is on already changes nothing: safe to send again.
        data = {"labels": list(labels)}
        await self._t.send(repo, "post", LABELS, data, issue_number=issue_number)

    async def remove_label(self, *, repo: Repo, issue_number: int, name: str) -> None:
        """Take a label off; a label that is not there is already gone."""
        await self._t.delete(repo, LABEL, gone=(404,), issue_number=issue_number, name=name)

    async def create_reaction_for_comment(
        self, *, repo: Repo, comment_id: int, content: str
    ) -> None:
        # GitHub answers 200 with the existing reaction when it is there: safe to send again.
        # https://docs.github.com/en/rest/reactions/reactions#create-reaction-for-an-issue-comment
        data = {"content": content}
        await self._t.send(repo, "post", COMMENT_REACTIONS, data, comment_id=comment_id)


def _by_app(comment: Comment, identity: AppIdentity | None) -> bool:
    """Whether the App's bot account wrote the comment (any bot account, without an App)."""
    login = comment.author.login
    if comment.author.kind != "Bot" or not login.endswith("[bot]"):
        return False
    return identity is None or login == identity.bot_login
