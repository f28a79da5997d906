"""A worker killed with SIGKILL mid-run: on restart the task completes exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import SystemClock
from bot.core.task_states import TaskState
from bot.store import Store
from tests.contract.prism import PrismProxy
from tests.events import issue_label_event
from tests.fakegithub import FakeGitHub
from tests.github_fixtures import APP_ID
from tests.signing import SECRET, delivery_headers
from tests.test_loop import DONE, FILES, FIX, sleep_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """`bosun serve` in its own process group, so that a kill takes its sandboxes too."""

    def __init__(self, env: dict[str, str], script: list[dict[str, Any]], workdir: Path) -> None:
        self.port = free_port()
        script_path = workdir / f"script-{self.port}.json"
        script_path.write_text(json.dumps(script))
        self.log = (workdir / f"serve-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.port)],
            env={**env, "BOSUN_MODEL_SCRIPT": str(script_path)},
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._healthy, timeout=60)

    def _healthy(self) -> bool:
        assert self.process.poll() is None, "bosun serve exited"
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def deliver(self, event: Any) -> int:
        body = json.dumps(event.data).encode()
        headers = delivery_headers(event.event, body, delivery_id=event.delivery_id)
        request = urllib.request.Request(f"{self.url}/webhook", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()


def wait_until(check: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def serve_env(
    fake_github: FakeGitHub,
    prism_proxy: PrismProxy,
    github_app_key: tuple[str, str],
    searchable_dir: Path,
    sandbox_user: str,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    fake_github.now = lambda: datetime.now(UTC)  # the server signs its JWTs by the real clock
    fake_github.public_url = prism_proxy.url
    key_file = tmp_path / "app.pem"
    key_file.write_text(github_app_key[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")}
    env.update(
        BOSUN_WEBHOOK_SECRET=SECRET,
        BOSUN_DATABASE_URL=f"sqlite:///{tmp_path / 'bosun.db'}",
        BOSUN_APP_ID=APP_ID,
        BOSUN_PRIVATE_KEY_FILE=str(key_file),
        BOSUN_GITHUB_API_URL=prism_proxy.url,
        BOSUN_WORKERS="1",
        BOSUN_LEASE_SECONDS="3",
        BOSUN_WORKSPACE_DIR=str(searchable_dir / "workspaces"),
        BOSUN_SANDBOX_USER=sandbox_user,
        BOSUN_LOG_LEVEL="INFO",
    )
    yield env


def test_a_killed_worker_task_completes_exactly_once_after_restart(
    serve_env: dict[str, str],
    fake_github: FakeGitHub,
    tmp_path: Path,
    prism_violations: Callable[[], list[str]],
) -> None:
    """SIGKILL mid-run loses nothing: one PR, one status comment, no lock left held."""
    fake_github.add_repo("acme", "app", installation_id=7, files=FILES, git=True)
    fake_github.add_issue("acme", "app", number=12, title="add() is wrong")
    fake_github.set_permission("acme", "app", "alice", "write")
    store = Store.connect(serve_env["BOSUN_DATABASE_URL"], clock=SystemClock())

    first = Serve(serve_env, [sleep_for(60), FIX, DONE], tmp_path)
    try:
        assert first.deliver(issue_label_event("labeled", label="agent:fix-bug")) == 202
        wait_until(
            lambda: bool(store.tasks.all()) and bool(store.model_calls.for_task(1)), timeout=60
        )
        assert store.tasks.all()[0].state == TaskState.RUNNING
        time.sleep(0.5)  # inside the sandboxed `sleep`
    finally:
        first.kill()

    second = Serve(serve_env, [FIX, DONE], tmp_path)
    try:
        wait_until(lambda: store.tasks.all()[0].state == TaskState.PR_OPEN, timeout=60)
        wait_until(
            lambda: "is ready for review" in fake_github.comments("acme", "app", 12)[0]["body"],
            timeout=15,
        )
    finally:
        second.stop()
    [task] = store.tasks.all()
    assert task.attempts == 2
    assert len(fake_github.pulls("acme", "app")) == 1
    assert len(fake_github.comments("acme", "app", 12)) == 1
    assert store.leases.all() == []
    actions = [r.action for r in store.audit.records(repo_full_name="acme/app")]
    assert actions.count("task.retry") == 1 and actions.count("task.pr_opened") == 1
    store.close()
    assert prism_violations() == []
