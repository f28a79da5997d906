"""The running service for end-to-end tests: real store, sandbox, scheduler and worker; the
fake GitHub behind Prism; a scripted model. Tests start Bosun with a script and deliver events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from gidgethub import sansio

from bot.app import create_app
from bot.core.clock import SystemClock
from bot.core.task_states import TaskState
from bot.github.client import GitHubClient
from bot.settings import Secret, Settings
from bot.store import Store
from bot.store.tables import Task
from tests.fakegithub import FakeGitHub
from tests.signing import SECRET, delivery_headers

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
Violations = Callable[[], list[str]]

POLICY = b"""\
version: 1
agents:
  coder:
    runtime: builtin
    tools: [list_files, read_file, write_file, edit_file, run_command]
    commands: [python3]
    limits: {cpu_seconds: 60, memory_mb: 1024, wall_seconds: 120, max_steps: 10}
models:
  tiers:
    small: [gpt-4o-mini]
  default_tier: small
"""
TASK = b"""\
description: Fix what the issue reports.
agent: coder
prompt: |
  Fix issue #{{ issue.number }}: {{ issue.title }}
  {{ issue.body }}
"""
FILES = {
    "README.md": b"# app\n",
    "calc.py": b"def add(a, b):\n    return a - b\n",
    ".gitignore": b"__pycache__/\n",
    ".bosun/policy.yaml": POLICY,
    ".bosun/tasks/fix-bug.yaml": TASK,
    ".bosun/tasks/add-tests.yaml": TASK,
}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def sleep_for(seconds: float) -> dict[str, Any]:
    return call("run_command", argv=["python3", "-c", f"import time; time.sleep({seconds})"])


APPEND_LINE = call(
    "run_command", argv=["python3", "-c", "open('log.txt', 'a').write('one more line\\n')"]
)
FIX = call("edit_file", path="calc.py", old="return a - b", new="return a + b")
DONE = {"content": "Fixed add(): it subtracted."}


@pytest.fixture
def live_store(tmp_path: Path) -> Iterator[Store]:
    """A store on the real clock: leases and heartbeats run in real time here."""
    store = Store.connect(f"sqlite:///{tmp_path / 'bosun.db'}", clock=SystemClock())
    store.migrate()
    yield store
    store.close()


Start = Callable[[list[dict[str, Any]]], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def start_bosun(
    live_store: Store,
    github_via_prism: GitHubClient,
    searchable_dir: Path,
    sandbox_user: str,
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
) -> AsyncIterator[Start]:
    async def start(script: list[dict[str, Any]]) -> TestClient[Any, Any]:
        script_path = tmp_path / "script.json"
        script_path.write_text(json.dumps(script))
        settings = Settings(
            webhook_secret=Secret(SECRET),
            workers=2,
            sandbox="bubblewrap",
            sandbox_user=sandbox_user,
            workspace_dir=searchable_dir / "workspaces",
            lease_seconds=10,
            model_script=script_path,
        )
        app = create_app(settings, clock=SystemClock(), store=live_store, github=github_via_prism)
        return await aiohttp_client(app)

    yield start


async def deliver(client: TestClient[Any, Any], event: sansio.Event) -> None:
    body = json.dumps(event.data).encode()
    headers = delivery_headers(event.event, body, delivery_id=event.delivery_id)
    response = await client.post("/webhook", data=body, headers=headers)
    assert response.status == 202, await response.text()


async def settled(store: Store, count: int, timeout: float = 60) -> list[Task]:
    """Wait until `count` tasks have left queued and running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = store.tasks.all("acme/app")
        done = [t for t in tasks if t.state not in (TaskState.QUEUED, TaskState.RUNNING)]
        if len(done) >= count:
            return tasks
        await asyncio.sleep(0.1)
    raise AssertionError(f"tasks did not settle: {[(t.id, t.state) for t in store.tasks.all()]}")


async def eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    """Publishing follows the recorded state: wait for what people will see."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def comment_says(fake: FakeGitHub, text: str, *, number: int = 12) -> Callable[[], bool]:
    return lambda: any(text in c["body"] for c in fake.comments("acme", "app", number))
