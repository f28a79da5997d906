"""Webhook payloads for tests, built from GitHub's recorded examples in `examples/events/`."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from gidgethub import sansio

from bot.store import NewTask

EXAMPLES = Path(__file__).parent.parent / "examples"


@cache
def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{name}.json").read_text())
    return data


def example_config() -> dict[str, bytes]:
    """The sample `.bosun/` of `examples/`, as repo-relative paths to bytes."""
    root = EXAMPLES / ".bosun"
    return {f".bosun/{path.relative_to(root)}": path.read_bytes() for path in root.rglob("*.yaml")}


def issue_label_event(
    action: str,
    *,
    label: str,
    sender: str = "alice",
    owner: str = "acme",
    repo: str = "app",
    issue_number: int = 12,
    installation_id: int = 7,
    delivery_id: str = "d-1",
) -> sansio.Event:
    """An `issues.labeled` / `issues.unlabeled` delivery as GitHub sends it."""
    data = copy.deepcopy(_example(f"issues.{action}"))
    data["label"]["name"] = label
    data["sender"]["login"] = sender
    data["issue"]["number"] = issue_number
    data["issue"]["state"] = "open"
    data["repository"].update(name=repo, full_name=f"{owner}/{repo}", default_branch="main")
    data["repository"]["owner"]["login"] = owner
    data["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9u"}
    return sansio.Event(data, event="issues", delivery_id=delivery_id)


def installation_event(
    event: str, action: str, *, installation_id: int = 7, delivery_id: str = "i-1"
) -> sansio.Event:
    data = copy.deepcopy(_example(f"{event}.{action}"))
    data["installation"]["id"] = installation_id
    return sansio.Event(data, event=event, delivery_id=delivery_id)


def pull_label_event(
    action: str,
    *,
    label: str,
    number: int,
    head: str,
    sender: str = "alice",
    owner: str = "acme",
    repo: str = "app",
    installation_id: int = 7,
    delivery_id: str = "p-1",
    head_repo_full_name: str | None = None,
) -> sansio.Event:
    """A `pull_request.labeled` / `.unlabeled` delivery for a PR from branch `head`."""
    data = copy.deepcopy(_example(f"pull_request.{action}"))
    full_name = f"{owner}/{repo}"
    data["label"]["name"] = label
    data["sender"]["login"] = sender
    data["number"] = number
    pull = data["pull_request"]
    pull.update(number=number, state="open")
    pull["head"].update(ref=head)
    pull["head"]["repo"] = {**pull["head"]["repo"], "full_name": head_repo_full_name or full_name}
    pull["base"].update(ref="main")
    pull["base"]["repo"] = {**pull["base"]["repo"], "full_name": full_name}
    data["repository"].update(name=repo, full_name=full_name, default_branch="main")
    data["repository"]["owner"]["login"] = owner
    data["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9u"}
    return sansio.Event(data, event="pull_request", delivery_id=delivery_id)


def comment_event(
    body: str,
    *,
    sender: str = "alice",
    sender_type: str = "User",
    issue_number: int = 12,
    comment_id: int = 0,
    owner: str = "acme",
    repo: str = "app",
    installation_id: int = 7,
    delivery_id: str = "c-1",
) -> sansio.Event:
    """An `issue_comment.created` delivery on an issue."""
    data = copy.deepcopy(_example("issue_comment.created"))
    data["comment"].update(body=body, id=comment_id)
    data["comment"]["user"] = {**data["comment"]["user"], "login": sender, "type": sender_type}
    data["sender"].update(login=sender, type=sender_type)
    data["issue"].update(number=issue_number, state="open")
    data["issue"].pop("pull_request", None)
    data["repository"].update(name=repo, full_name=f"{owner}/{repo}", default_branch="main")
    data["repository"]["owner"]["login"] = owner
    data["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9u"}
    return sansio.Event(data, event="issue_comment", delivery_id=delivery_id)


def pull_closed_event(
    *, number: int, merged: bool, sender: str = "bob", delivery_id: str = "pc-1"
) -> sansio.Event:
    event = pull_label_event(
        "labeled", label="x", number=number, head="bosun/fix-bug/12", sender=sender
    )
    data = copy.deepcopy(event.data)
    data["action"] = "closed"
    data.pop("label")
    data["pull_request"].update(state="closed", merged=merged)
    return sansio.Event(data, event="pull_request", delivery_id=delivery_id)


def issue_closed_event(*, issue_number: int = 12, delivery_id: str = "ic-1") -> sansio.Event:
    event = issue_label_event("labeled", label="x", issue_number=issue_number)
    data = copy.deepcopy(event.data)
    data["action"] = "closed"
    data.pop("label")
    data["issue"]["state"] = "closed"
    return sansio.Event(data, event="issues", delivery_id=delivery_id)


def review_event(
    review: dict[str, Any],
    *,
    number: int,
    action: str = "submitted",
    owner: str = "acme",
    repo: str = "app",
    installation_id: int = 7,
    delivery_id: str = "r-1",
) -> sansio.Event:
    """A `pull_request_review` delivery for `review` as the REST API answers it.

    Webhooks spell a review's state in lower case (`changes_requested`), the REST API in
    upper case.
    """
    data = copy.deepcopy(_example("pull_request_review.submitted"))
    data["action"] = action
    data["review"].update(
        id=review["id"],
        body=review["body"],
        commit_id=review["commit_id"],
        state=str(review["state"]).lower(),
    )
    user = review["user"]
    data["review"]["user"] = {
        **data["review"]["user"],
        "login": user["login"],
        "type": user["type"],
    }
    data["sender"].update(login=user["login"], type=user["type"])
    full_name = f"{owner}/{repo}"
    data["pull_request"].update(number=number, state="open")
    data["repository"].update(name=repo, full_name=full_name, default_branch="main")
    data["repository"]["owner"]["login"] = owner
    data["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9u"}
    return sansio.Event(data, event="pull_request_review", delivery_id=delivery_id)


def new_task(**overrides: object) -> NewTask:
    """Alice's `fix-bug` on acme/app issue 12, with `overrides`."""
    fields: dict[str, object] = {
        "installation_id": 7,
        "repo_full_name": "acme/app",
        "issue_number": 12,
        "is_pull_request": False,
        "task_name": "fix-bug",
        "branch": "bosun/fix-bug/12",
        "triggered_by": "alice",
        "trigger_delivery_id": "d-1",
        "config_sha": "abc123",
    }
    fields.update(overrides)
    return NewTask(**fields)  # type: ignore[arg-type]
