"""Check runs: one per name and commit, found again by name and App, annotated 50 at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.github.transport import Transport
from bot.github.types import (
    Annotation,
    AppIdentity,
    CheckConclusion,
    CheckRun,
    CheckStatus,
    Repo,
    given,
)

CHECK_RUNS = "/repos/{owner}/{repo}/check-runs"
CHECK_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
CHECK_RUNS_FOR_REF = (
    "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,app_id,per_page}"
)
# https://docs.github.com/en/rest/checks/runs#create-a-check-run ("Maximum length: 65535")
OUTPUT_LIMIT = 65535
TRUNCATED = "\n\n*(truncated)*"
FENCE = "```"
# https://docs.github.com/en/rest/checks/runs#update-a-check-run: "The Checks API limits the
# number of annotations to a maximum of 50 per API request"; later ones are appended.
ANNOTATIONS_PER_REQUEST = 50


class Checks:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def find_check_run(self, *, repo: Repo, head_sha: str, name: str) -> CheckRun | None:
        """The App's latest check run called `name` on the commit, if there is one."""
        identity = await self._t.app_identity()
        data = await self._t.get(
            repo,
            CHECK_RUNS_FOR_REF,
            ref=head_sha,
            check_name=name,
            filter="latest",
            app_id=identity.id if identity else None,
            per_page=100,
        )
        runs = [CheckRun.from_json(run) for run in (data or {}).get("check_runs") or []]
        return next((run for run in runs if _is_mine(run, name, identity)), None)

    async def list_check_runs(self, *, repo: Repo, ref: str) -> list[CheckRun]:
        """Every App's check runs on the commit, the latest of each name (a re-run replaces)."""
        items = await self._t.every_item(
            repo, CHECK_RUNS_FOR_REF, iterable_key="check_runs", ref=ref, filter="latest"
        )
        return [CheckRun.from_json(item) for item in items]

    async def create_check_run(
        self,
        *,
        repo: Repo,
        name: str,
        head_sha: str,
        status: CheckStatus,
        conclusion: CheckConclusion | None = None,
        title: str,
        summary: str,
        text: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        external_id: str | None = None,
        details_url: str | None = None,
        annotations: Sequence[Annotation] = (),
    ) -> CheckRun:
        """A new check run on `head_sha`; a completed one needs a conclusion, and only it.

        The output's summary and text are cut to GitHub's 65535 characters if need be.
        Annotations go 50 to a request: the first with the run, the rest in updates. Its
        identity is its name and commit: after a failure GitHub may have acted on, the run is
        looked for before it is created again.
        """
        status, conclusion = _check_status(status, conclusion)
        data = {"name": name, "head_sha": head_sha, "status": status} | _check_fields(
            conclusion=conclusion,
            started_at=started_at,
            completed_at=completed_at,
            external_id=external_id,
            details_url=details_url,
        )
        first, rest = _batches(annotations)
        data["output"] = _output(title=title, summary=summary, text=text, annotations=first)

        async def created() -> Any:
            found = await self.find_check_run(repo=repo, head_sha=head_sha, name=name)
            return (
                None
                if found is None
                else {"id": found.id, "name": found.name}
                | {
                    "status": found.status,
                    "conclusion": found.conclusion,
                }
            )

        run = CheckRun.from_json(await self._t.create(repo, CHECK_RUNS, data, find=created))
        return await self._annotate(repo, run, title=title, summary=summary, batches=rest)

    async def update_check_run(
        self,
        *,
        repo: Repo,
        check_run_id: int,
        status: CheckStatus | None = None,
        conclusion: CheckConclusion | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        external_id: str | None = None,
        details_url: str | None = None,
        annotations: Sequence[Annotation] = (),
    ) -> CheckRun:
        """Change what is given (None leaves a field as it is); an output needs a summary.

        Annotations are added to the run's, 50 to a request (GitHub appends each batch).
        """
        if status is not None:
            status, conclusion = _check_status(status, conclusion)
        elif conclusion is not None:
            conclusion = CheckConclusion(conclusion)
        if summary is None and (title is not None or text is not None):
            raise ValueError("a check run's output needs a summary")
        if annotations and (title is None or summary is None):
            raise ValueError("annotations go in an output with a title and a summary")
        data = given(status=status) | _check_fields(
            conclusion=conclusion,
            started_at=started_at,
            completed_at=completed_at,
            external_id=external_id,
            details_url=details_url,
        )
        first, rest = _batches(annotations)
        if summary is not None:
            data["output"] = _output(title=title, summary=summary, text=text, annotations=first)
        run = CheckRun.from_json(
            await self._t.send(repo, "patch", CHECK_RUN, data, check_run_id=check_run_id)
        )
        return await self._annotate(repo, run, title=title, summary=summary, batches=rest)

    async def _annotate(
        self,
        repo: Repo,
        run: CheckRun,
        *,
        title: str | None,
        summary: str | None,
        batches: Sequence[Sequence[Annotation]],
    ) -> CheckRun:
        """Send the annotations left after the first 50, keeping the output's title and summary."""
        for batch in batches:
            assert summary is not None  # annotations always come with an output
            output = _output(title=title, summary=summary, text=None, annotations=batch)
            # GitHub appends each batch: sent twice, it would be there twice.
            data = {"output": output}
            run = CheckRun.from_json(
                await self._t.send(
                    repo, "patch", CHECK_RUN, data, idempotent=False, check_run_id=run.id
                )
            )
        return run


def _is_mine(run: CheckRun, name: str, identity: AppIdentity | None) -> bool:
    return run.name == name and (identity is None or run.app_id == identity.id)


def _check_status(
    status: CheckStatus, conclusion: CheckConclusion | None
) -> tuple[CheckStatus, CheckConclusion | None]:
    """Both as enums (plain strings are checked too), consistent with each other."""
    # https://docs.github.com/en/rest/checks/runs#create-a-check-run: a conclusion completes
    # the run, and a completed run must have one.
    status = CheckStatus(status)
    conclusion = None if conclusion is None else CheckConclusion(conclusion)
    if status is CheckStatus.COMPLETED and conclusion is None:
        raise ValueError("a completed check run needs a conclusion")
    if status is not CheckStatus.COMPLETED and conclusion is not None:
        raise ValueError(f"a check run with a conclusion is completed, not {status}")
    return status, conclusion


def _check_fields(
    *,
    conclusion: CheckConclusion | None,
    started_at: datetime | None,
    completed_at: datetime | None,
    external_id: str | None,
    details_url: str | None,
) -> dict[str, Any]:
    return given(
        conclusion=conclusion,
        started_at=_iso(started_at) if started_at else None,
        completed_at=_iso(completed_at) if completed_at else None,
        external_id=external_id,
        details_url=details_url,
    )


def _output(
    *,
    title: str | None,
    summary: str,
    text: str | None,
    annotations: Sequence[Annotation] = (),
) -> dict[str, Any]:
    return given(
        title=title,
        summary=fit_output(summary),
        text=None if text is None else fit_output(text),
        annotations=[annotation.as_json() for annotation in annotations] or None,
    )


def _batches(
    annotations: Sequence[Annotation],
) -> tuple[Sequence[Annotation], list[Sequence[Annotation]]]:
    """The first request's annotations, and those of each request after it."""
    size = ANNOTATIONS_PER_REQUEST
    chunks = [annotations[i : i + size] for i in range(0, len(annotations), size)]
    return (chunks[0] if chunks else ()), chunks[1:]


def fit_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """`text` cut to `limit` UTF-8 bytes (so to as many characters at most), marked as cut.

    The cut falls at a line break near the end where there is one, never inside a
    character, and an unclosed code fence is closed so that the page still renders.
    """
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(TRUNCATED.encode()) - len(FENCE) - 1
    kept = encoded[:room].decode(errors="ignore")
    line_end = kept.rfind("\n")
    if line_end > len(kept) * 3 // 4:  # end on a whole line, unless that loses too much
        kept = kept[:line_end]
    if kept.count(FENCE) % 2:
        kept += "\n" + FENCE
    return kept + TRUNCATED


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a time sent to GitHub must carry its time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
