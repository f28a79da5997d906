"""Read-only pages of the local stand-in forge of `bosun demo`: repositories, issues, PRs, runs."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any, Protocol, TypeVar

from aiohttp import web


class Forge(Protocol):
    """What the pages read from the forge; the forge itself satisfies it."""

    @property
    def bot_login(self) -> str: ...
    def repositories(self) -> list[str]: ...
    def clone_url(self, owner: str, name: str) -> str: ...
    def branches(self, owner: str, name: str) -> dict[str, str]: ...
    def issue(self, owner: str, name: str, number: int) -> dict[str, Any]: ...
    def issues(self, owner: str, name: str) -> list[dict[str, Any]]: ...
    def comments(self, owner: str, name: str, number: int) -> list[dict[str, Any]]: ...
    def pulls(self, owner: str, name: str, state: str = "all") -> list[dict[str, Any]]: ...
    def check_runs(
        self, owner: str, name: str, head_sha: str | None = None
    ) -> list[dict[str, Any]]: ...
    def pull_diff(self, owner: str, name: str, number: int) -> str: ...
    def read_file(
        self, owner: str, name: str, path: str, ref: str | None = None
    ) -> bytes | None: ...


T = TypeVar("T")
NOTICE = (
    "This is a local stand-in for GitHub, run by `bosun demo` on this machine. "
    "It is not GitHub: nothing here was sent anywhere."
)
_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}"
    ".notice{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem 1rem;border-radius:6px}"
    "pre{background:#f6f8fa;padding:.75rem;overflow-x:auto;white-space:pre-wrap}"
    ".add{color:#116329}.del{color:#82071e}.hunk{color:#0550ae}"
    "section{border-top:1px solid #d0d7de;margin-top:1rem}"
)


def add_routes(app: web.Application, forge: Forge) -> None:
    """The pages behind the forge's `html_url`s, after the API's routes."""
    pages = _Pages(forge)
    repo = "/{owner}/{repo}"
    app.add_routes(
        [
            web.get("/", pages.index),
            web.get("/apps/{slug}", pages.app),
            web.get("/{owner}", pages.owner),
            web.get(repo, pages.repository),
            web.get(repo + "/issues/{number:\\d+}", pages.issue),
            web.get(repo + "/pull/{number:\\d+}", pages.pull),
            web.get(repo + "/pull/{number:\\d+}.diff", pages.diff),
            web.get(repo + "/pull/{number:\\d+}.txt", pages.text),
            web.get(repo + "/runs/{run_id:\\d+}", pages.run),
            web.get(repo + "/{kind:blob|raw}/{sha:[0-9a-f]{40}}/{path:.+}", pages.file),
        ]
    )


def pull_text(forge: Forge, owner: str, name: str, number: int) -> str:
    """A pull request in plain text: what it is, its check runs, its comments and its diff."""
    pull = _pull(forge, owner, name, number)
    lines = [
        f"[{NOTICE}]",
        "",
        f"#{number} {pull['title']} ({pull['state']})",
        f"{pull['head']['label']} -> {pull['base']['ref']} at {pull['head']['sha'][:12]}",
        pull["html_url"],
        "",
        pull["body"] or "",
        "",
        "Check runs:",
    ]
    for run in forge.check_runs(owner, name, pull["head"]["sha"]):
        lines.append(f"  {run['name']}: {run['conclusion'] or run['status']}")
        lines += [f"    {line}" for line in _run_lines(run)]
    lines.append("Comments:")
    for comment in forge.comments(owner, name, number):
        lines.append(f"  {comment['user']['login']} at {comment['created_at']}:")
        lines += [f"    {line}" for line in comment["body"].splitlines()]
    return "\n".join([*lines, "Diff:", forge.pull_diff(owner, name, number)])


class _Pages:
    """Each page reads the forge's public views, the same data its API answers with."""

    def __init__(self, forge: Forge) -> None:
        self._forge = forge

    async def index(self, request: web.Request) -> web.Response:
        items = [_link(f"/{full}", full) for full in self._forge.repositories()]
        return _page("Local stand-in forge", _list(items) or "<p>No repositories yet.</p>")

    async def app(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        if f"{slug}[bot]" != self._forge.bot_login:
            raise web.HTTPNotFound(text=NOTICE)
        body = f"<p>The App {escape(slug)}, installed on every repository of this forge.</p>"
        return _page(slug, body)

    async def owner(self, request: web.Request) -> web.Response:
        login = request.match_info["owner"]
        prefix = f"{login}/"
        owned = [f for f in self._forge.repositories() if f.startswith(prefix)]
        body = f"<p>{escape(login)} on the local stand-in forge.</p>"
        return _page(login, body + _list([_link(f"/{full}", full) for full in owned]))

    async def repository(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        try:
            branches = self._forge.branches(owner, name)
            issues = self._forge.issues(owner, name)
        except KeyError:
            raise web.HTTPNotFound(text=NOTICE) from None
        rows = [
            f"{'PR' if 'pull_request' in i else 'Issue'} "
            + _link(i["html_url"], f"#{i['number']} {i['title']}")
            + f" ({escape(i['state'])})"
            for i in issues
        ]
        tips = [f"<code>{escape(b)}</code> {escape(sha[:12])}" for b, sha in branches.items()]
        clone = f"<p>Clone: <code>{escape(self._forge.clone_url(owner, name))}</code></p>"
        body = clone + "<h2>Issues and pull requests</h2>" + _list(rows)
        return _page(f"{owner}/{name}", body + "<h2>Branches</h2>" + _list(tips))

    async def issue(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        issue = _or_404(lambda: self._forge.issue(owner, name, _number(request)))
        if "pull_request" in issue:
            raise web.HTTPFound(issue["html_url"])
        head = f"<p>{_labels(issue)} opened by {escape(issue['user']['login'])}</p>"
        body = head + _pre(issue["body"] or "") + self._comments(owner, name, issue["number"])
        return _page(f"{owner}/{name}#{issue['number']} {issue['title']}", body)

    async def pull(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        number = _number(request)
        pull = _or_404(lambda: _pull(self._forge, owner, name, number))
        head, base = pull["head"], pull["base"]
        parts = [
            f"<p><b>{escape(pull['state'])}</b>: <code>{escape(head['ref'])}</code> into "
            f"<code>{escape(base['ref'])}</code> at <code>{escape(head['sha'][:12])}</code>, "
            f"opened by {escape(pull['user']['login'])}. {_labels(pull)}</p>",
            _pre(pull["body"] or ""),
            "<section><h2>Check runs</h2>",
        ]
        for run in self._forge.check_runs(owner, name, head["sha"]):
            parts.append(self._run_block(run))
        parts.append("</section>" + self._comments(owner, name, number))
        diff = self._forge.pull_diff(owner, name, number)
        links = (
            _link(pull["diff_url"], "as a diff")
            + ", "
            + _link(f"{pull['html_url']}.txt", "as text")
        )
        parts.append(f"<section><h2>Changes</h2><p>{links}</p>{_diff(diff)}</section>")
        return _page(f"{owner}/{name}#{number} {pull['title']}", "".join(parts))

    async def diff(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        diff = _or_404(lambda: self._forge.pull_diff(owner, name, _number(request)))
        return web.Response(text=diff, content_type="text/plain")

    async def text(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        text = _or_404(lambda: pull_text(self._forge, owner, name, _number(request)))
        return web.Response(text=text, content_type="text/plain")

    async def run(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        run_id = int(request.match_info["run_id"])
        runs = _or_404(lambda: self._forge.check_runs(owner, name))
        run = next((r for r in runs if r["id"] == run_id), None)
        if run is None:
            raise web.HTTPNotFound(text=NOTICE)
        return _page(f"{owner}/{name} check run {run['name']}", self._run_block(run))

    async def file(self, request: web.Request) -> web.Response:
        owner, name = _names(request)
        sha, path = request.match_info["sha"], request.match_info["path"]
        data = _or_404(lambda: self._forge.read_file(owner, name, path, sha))
        if data is None:
            raise web.HTTPNotFound(text=NOTICE)
        return web.Response(body=data, content_type="text/plain", charset="utf-8")

    def _comments(self, owner: str, name: str, number: int) -> str:
        parts = ["<section><h2>Comments</h2>"]
        for comment in self._forge.comments(owner, name, number):
            who = escape(comment["user"]["login"])
            parts.append(
                f'<div id="issuecomment-{comment["id"]}"><p><b>{who}</b> at '
                f"{escape(comment['created_at'])}</p>{_pre(comment['body'])}</div>"
            )
        return "".join(parts) + "</section>"

    def _run_block(self, run: dict[str, Any]) -> str:
        verdict = run["conclusion"] or run["status"]
        lines = "\n".join(_run_lines(run))
        return f"<h3>{escape(run['name'])}: {escape(verdict)}</h3>{_pre(lines)}"


def _pull(forge: Forge, owner: str, name: str, number: int) -> dict[str, Any]:
    found = next((p for p in forge.pulls(owner, name) if p["number"] == number), None)
    if found is None:
        raise KeyError(f"{owner}/{name} has no pull request #{number}")
    return found


def _run_lines(run: dict[str, Any]) -> list[str]:
    output = run["output"]
    lines = [text for text in (output["title"], output["summary"], output["text"]) if text]
    if output["annotations_count"]:
        lines.append(f"{output['annotations_count']} annotation(s)")
    return lines


def _or_404(read: Callable[[], T]) -> T:
    try:
        return read()
    except KeyError:
        raise web.HTTPNotFound(text=NOTICE) from None


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info["owner"], request.match_info["repo"]


def _number(request: web.Request) -> int:
    return int(request.match_info["number"])


def _page(title: str, body: str) -> web.Response:
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><p class='notice'>{escape(NOTICE)}</p>"
        f"<p><a href='/'>All repositories</a></p><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""


def _labels(item: dict[str, Any]) -> str:
    return " ".join(f"<code>{escape(label['name'])}</code>" for label in item["labels"])


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>" if text else ""


def _diff(diff: str) -> str:
    def line(text: str) -> str:
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(text[:1], "")
        if text.startswith(("+++", "---")):
            kind = ""
        return f'<span class="{kind}">{escape(text)}</span>' if kind else escape(text)

    return "<pre>" + "\n".join(line(text) for text in diff.splitlines()) + "</pre>"
