"""The stand-in forge's check run endpoints, validated as GitHub validates check runs."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.demo.forge_http import Answer, ApiContext, invalid, json_object, paged, string_field
from bot.demo.forge_state import CheckRun, ForgeRepo

RUNS = "/repos/{owner}/{repo}/check-runs"
RUN = RUNS + "/{run_id:\\d+}"
# https://docs.github.com/en/rest/checks/runs#create-a-check-run
STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
ANNOTATION_LEVELS = ("notice", "warning", "failure")
MAX_ANNOTATIONS = 50  # per request


class CheckRunApi:
    """Create, update and find check runs on commits of the forge's repositories."""

    def __init__(self, context: ApiContext) -> None:
        self._ctx = context
        self._shapes = context.shapes
        self._state = context.state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/repos/{owner}/{repo}/commits/{ref:.+}/check-runs", self.list_for_ref),
            web.post(RUNS, self.create),
            web.get(RUN, self.get),
            web.patch(RUN, self.update),
            web.get(RUN + "/annotations", self.list_annotations),
        ]

    async def list_for_ref(self, request: web.Request) -> web.Response:
        repo = self._ctx.repo(request)
        ref = request.match_info["ref"]
        sha = await asyncio.to_thread(repo.git.resolve, ref)
        if sha is None:
            raise Answer(422, f"No commit found for SHA: {ref}")
        runs = _chosen(repo, sha, request.query, app_id=self._shapes.app.id)
        answers = [self._shapes.check_run(repo, run) for run in runs]
        return paged(request, answers, key="check_runs")

    async def create(self, request: web.Request) -> web.Response:
        payload = await json_object(request)
        name = string_field(payload, "name", resource="CheckRun")
        head_sha = string_field(payload, "head_sha", resource="CheckRun")
        if isinstance(payload.get("output"), dict):
            string_field(payload["output"], "title", resource="CheckRun")  # on create only
        repo = self._ctx.repo(request)
        if await asyncio.to_thread(repo.git.resolve, head_sha) != head_sha:
            raise Answer(422, f"No commit found for SHA: {head_sha}")
        now = self._state.clock.now()
        run = CheckRun(self._state.next_id(), name, head_sha, "queued", None, now, None, None, None)
        apply(run, payload, now=now)
        repo.check_runs[run.id] = run
        return web.json_response(self._shapes.check_run(repo, run), status=201)

    async def get(self, request: web.Request) -> web.Response:
        repo, run = self._ctx.check_run(request)
        return web.json_response(self._shapes.check_run(repo, run))

    async def update(self, request: web.Request) -> web.Response:
        payload = await json_object(request)
        repo, run = self._ctx.check_run(request)
        apply(run, payload, now=self._state.clock.now())
        return web.json_response(self._shapes.check_run(repo, run))

    async def list_annotations(self, request: web.Request) -> web.Response:
        _, run = self._ctx.check_run(request)
        return paged(request, list(run.annotations))


def _chosen(repo: ForgeRepo, sha: str, query: Any, *, app_id: int) -> list[CheckRun]:
    """The runs on `sha` that the query asks for, newest first."""
    runs = sorted((r for r in repo.check_runs.values() if r.head_sha == sha), key=lambda r: -r.id)
    if query.get("filter", "latest") == "latest":
        newest = {r.name: r for r in reversed(runs)}
        runs = [r for r in runs if newest[r.name] is r]
    if "check_name" in query:
        runs = [r for r in runs if r.name == query["check_name"]]
    if "status" in query:
        runs = [r for r in runs if r.status == query["status"]]
    if query.get("app_id", str(app_id)) != str(app_id):
        return []  # every run on the forge is the App's own
    return runs


def apply(run: CheckRun, payload: dict[str, Any], *, now: datetime) -> None:
    """Change a check run as GitHub's create and update do, all checks before any change."""
    status = payload.get("status", run.status)
    conclusion = payload.get("conclusion", run.conclusion)
    if status not in STATUSES:
        raise invalid("CheckRun", "status")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        raise invalid("CheckRun", "conclusion")
    if payload.get("conclusion") is not None:
        status = "completed"  # "Providing conclusion will automatically set the status"
    if status == "completed" and conclusion is None:
        missing = {"resource": "CheckRun", "code": "missing_field", "field": "conclusion"}
        raise Answer(422, "Validation Failed", [missing])
    started = _moment(payload, "started_at", run.started_at)
    completed = _moment(payload, "completed_at", run.completed_at)
    output, annotations = _output(payload.get("output"), run.output.get("title"))
    if isinstance(payload.get("name"), str):
        run.name = payload["name"]
    if "details_url" in payload:
        run.details_url = payload["details_url"]
    if "external_id" in payload:
        run.external_id = payload["external_id"]
    run.status, run.conclusion, run.started_at = status, conclusion, started
    run.completed_at = completed or (now if status == "completed" else None)
    if output is not None:
        run.output = output
    run.annotations.extend(annotations)  # each update adds to those already there


def _output(
    value: Any, old_title: str | None
) -> tuple[dict[str, str | None] | None, list[dict[str, Any]]]:
    """The output and its new annotations; an update's needs only a summary."""
    if value is None:
        return None, []
    if not isinstance(value, dict):
        raise invalid("CheckRun", "output")
    title = value["title"] if isinstance(value.get("title"), str) else old_title
    summary = string_field(value, "summary", resource="CheckRun")
    annotations = value.get("annotations") or []
    if not isinstance(annotations, list) or len(annotations) > MAX_ANNOTATIONS:
        raise invalid("CheckRun", "annotations")
    output = {"title": title, "summary": summary, "text": value.get("text")}
    return output, [_annotation(a) for a in annotations]


def _annotation(value: Any) -> dict[str, Any]:
    path = string_field(value, "path", resource="CheckRun")
    message = string_field(value, "message", resource="CheckRun")
    level = value.get("annotation_level")
    lines = value.get("start_line"), value.get("end_line")
    if level not in ANNOTATION_LEVELS or not all(isinstance(n, int) for n in lines):
        raise invalid("CheckRun", "annotations")
    return {
        "path": path,
        "start_line": lines[0],
        "end_line": lines[1],
        "start_column": value.get("start_column"),
        "end_column": value.get("end_column"),
        "annotation_level": level,
        "title": value.get("title"),
        "message": message,
        "raw_details": value.get("raw_details"),
        "blob_href": "",
    }


def _moment(payload: dict[str, Any], key: str, default: datetime | None) -> datetime | None:
    value = payload.get(key)
    if value is None:
        return default
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid("CheckRun", key) from exc
