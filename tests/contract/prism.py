"""GitHub's OpenAPI description, cut to the operations Bosun calls, served by a Prism proxy."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

CONTRACT_DIR = Path(__file__).resolve().parent
NODE_MODULES = CONTRACT_DIR / "node_modules"
OPENAPI_JSON = NODE_MODULES / "@octokit/openapi/generated/api.github.com.json"
PRISM_CLI = NODE_MODULES / "@stoplight/prism-cli/dist/index.js"
INSTALL_COMMAND = "npm ci --prefix tests/contract --no-audit --no-fund"

# Every operation bot/github/client.py sends; a request outside this list gets Prism's 404.
OPERATIONS = frozenset(
    {
        "apps/get-authenticated",
        "apps/create-installation-access-token",
        "repos/get",
        "repos/get-collaborator-permission-level",
        "repos/get-content",
        "git/get-ref",
        "git/delete-ref",
        "issues/get",
        "issues/list-comments",
        "issues/create-comment",
        "issues/update-comment",
        "issues/add-labels",
        "issues/remove-label",
        "reactions/create-for-issue-comment",
        "pulls/list",
        "pulls/get",
        "pulls/list-files",
        "pulls/list-reviews",
        "pulls/list-comments-for-review",
        "pulls/create",
        "pulls/update",
        "pulls/merge",
        "checks/list-for-ref",
        "checks/create",
        "checks/update",
        "repos/get-combined-status-for-ref",
    }
)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
GITHUB_API = "https://api.github.com"
LISTENING = "Prism is listening"
PROBLEM_JSON = "application/problem+json"
# Prism logs "[time] [CATEGORY] route ✖  error  message" when a request breaks the description
# (answered 422, never forwarded) and when the upstream's answer does (answered 500, with
# --errors); the broken rules themselves are in those answers' problem+json bodies.
ERROR_LINE = re.compile(r"✖\s+error\s")
TIME_PREFIX = re.compile(r"^\[[^\]]*\]\s*›?\s*")  # noqa: RUF001 - Prism's own separator
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class PrismUnavailable(RuntimeError):
    """Node.js or the pinned npm packages are missing."""


def require_installed() -> None:
    """Fail with the command that installs the harness when any part of it is missing."""
    if shutil.which("node") is None:
        raise PrismUnavailable("Node.js 20 or newer is needed for the GitHub contract tests")
    for needed in (OPENAPI_JSON, PRISM_CLI):
        if not needed.is_file():
            raise PrismUnavailable(
                f"{needed} is missing: run `SCARF_ANALYTICS=false {INSTALL_COMMAND}` "
                "from the repository root"
            )


def derive_spec(
    full: dict[str, Any], *, server_url: str, operations: Iterable[str] = OPERATIONS
) -> dict[str, Any]:
    """Keep `operations` and every component they reference; point the spec at `server_url`."""
    paths = _select_paths(full["paths"], set(operations))
    components = _referenced_components(full, paths)
    for item in paths.values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                _drop_link_headers(operation.get("responses", {}))
    _drop_link_headers(components.get("responses", {}))
    components.get("headers", {}).pop("link", None)
    spec: dict[str, Any] = {k: full[k] for k in ("openapi", "info", "tags", "externalDocs")}
    spec |= {"servers": [{"url": server_url}], "paths": paths, "components": components}
    text = json.dumps(spec).replace(GITHUB_API, server_url.rstrip("/"))
    result: dict[str, Any] = json.loads(text)
    return result


def _select_paths(all_paths: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    found: set[str] = set()
    for path, item in all_paths.items():
        keep = {
            method: op
            for method, op in item.items()
            if method in HTTP_METHODS and op.get("operationId") in wanted
        }
        if keep:
            found |= {op["operationId"] for op in keep.values()}
            keep |= {k: v for k, v in item.items() if k not in HTTP_METHODS}
            paths[path] = keep
    if missing := wanted - found:
        raise ValueError(f"not in GitHub's description: {', '.join(sorted(missing))}")
    return paths


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _referenced_components(full: dict[str, Any], paths: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    todo = set(_refs(paths))
    while todo:
        ref = todo.pop()
        if ref not in seen:
            seen.add(ref)
            todo |= set(_refs(_resolve(full, ref))) - seen
    components: dict[str, Any] = {}
    for ref in sorted(seen):
        _, _, kind, name = ref.split("/", 3)
        components.setdefault(kind, {})[name] = full["components"][kind][name]
    return components


def _drop_link_headers(responses: dict[str, Any]) -> None:
    # GitHub's examples carry api.github.com "next" links; the fake sends its own.
    for response in responses.values():
        if isinstance(response, dict) and "headers" in response:
            response["headers"] = {
                k: v for k, v in response["headers"].items() if k.lower() != "link"
            }


class PrismProxy:
    """`prism proxy --errors` in front of an upstream: checks each request and each answer."""

    def __init__(self, *, port: int, upstream: str, workdir: Path) -> None:
        self.port = port
        self.upstream = upstream
        self.url = f"http://127.0.0.1:{port}"
        self.spec_path = workdir / "github-openapi.json"
        self.log_path = workdir / "prism.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._problems: list[str] = []

    def start(self, *, timeout: float = 60.0) -> None:
        require_installed()
        full = json.loads(OPENAPI_JSON.read_text(encoding="utf-8"))
        self.spec_path.write_text(json.dumps(derive_spec(full, server_url=self.url)))
        argv = ["node", str(PRISM_CLI), "proxy", "--errors", "--cors=false"]
        argv += ["-h", "127.0.0.1", "-p", str(self.port), str(self.spec_path), self.upstream]
        env = os.environ | {"SCARF_ANALYTICS": "false", "NO_COLOR": "1", "FORCE_COLOR": "0"}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_until_listening(timeout)

    def _wait_until_listening(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if LISTENING in self.log_text():
                return
            if self._process.poll() is not None:
                raise PrismUnavailable(f"Prism exited early:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        self.stop()
        raise PrismUnavailable(f"Prism did not listen within {timeout} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def log_text(self) -> str:
        return ANSI.sub("", self.log_path.read_text(encoding="utf-8", errors="replace"))

    def mark(self, *, timeout: float = 10.0) -> Mark:
        """Wait until Prism has logged every request answered so far, and note that point.

        Prism writes its log a moment after it answers, so a request that is known to conform
        (an anonymous read of a repository that does not exist: 404) marks the point.
        """
        marker = f"/repos/bosun-log-marker/{uuid.uuid4().hex}"
        try:
            with urllib.request.urlopen(self.url + marker, timeout=timeout):
                pass
        except urllib.error.HTTPError as exc:
            exc.close()
        deadline = time.monotonic() + timeout
        while marker not in (text := self.log_text()):
            if time.monotonic() > deadline:
                raise PrismUnavailable(f"Prism did not log {marker} within {timeout} s")
            time.sleep(0.01)
        return Mark(log_offset=len(text), problems=len(self._problems))

    def violations(self, *, since: Mark | None = None) -> list[str]:
        """Every request or answer since the mark that broke GitHub's description.

        Each refusal Prism logged is listed, then the broken rules from the problem+json
        answers that reached a session traced by `trace_config()`.
        """
        since = since or Mark(log_offset=0, problems=0)
        end = self.mark()
        lines = self.log_text()[since.log_offset : end.log_offset].splitlines()
        refused = [_strip_time(line) for line in lines if ERROR_LINE.search(line)]
        return refused + self._problems[since.problems : end.problems]

    def trace_config(self) -> aiohttp.TraceConfig:
        """Tracing for an aiohttp session, keeping the rules named in Prism's refusals."""
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._on_request_end)
        trace.on_response_chunk_received.append(self._on_body)
        return trace

    async def _on_request_end(
        self, _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.response.content_type == PROBLEM_JSON:
            ctx.refused = f"{params.method} {params.url.path} -> {params.response.status}"

    async def _on_body(
        self,
        _: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceResponseChunkReceivedParams,
    ) -> None:
        if refused := getattr(ctx, "refused", None):
            problem = json.loads(params.chunk)
            rules = problem.get("validation") or problem.get("detail")
            self._problems.append(f"{refused}: {json.dumps(rules)}")


@dataclass(frozen=True)
class Mark:
    log_offset: int
    problems: int


def _strip_time(line: str) -> str:
    return TIME_PREFIX.sub("", line).strip()
