"""`bosun demo`: the whole loop on this machine, on a local stand-in forge and a scripted model."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.app import SCHEDULER, STORE, create_app
from bot.core.clock import SystemClock
from bot.core.task_states import FINISHED_TASK_STATES, TaskState
from bot.demo.forge import Forge
from bot.demo.sample import DEMO_ISSUE, REPO_FILES, SCRIPT
from bot.intake.signing import delivery_headers
from bot.settings import Secret, Settings
from bot.store import Store

OWNER, NAME = "acme", "widgets"
SECRET = "demo-webhook-secret"  # noqa: S105 - signs deliveries between two local processes
TIMEOUT_S = 180.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    ok: bool
    state: str


def app_key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_settings(workdir: Path, *, forge_url: str, private_key: str, sandbox: str) -> Settings:
    script = workdir / "model-script.json"
    script.write_text(json.dumps(SCRIPT, indent=2))
    return Settings(
        webhook_secret=Secret(SECRET),
        database_url=f"sqlite:///{workdir / 'bosun.db'}",
        app_id="1",
        private_key=Secret(private_key),
        github_api_url=forge_url,
        workers=1,
        sandbox=sandbox,
        workspace_dir=workdir / "workspaces",
        lease_seconds=30,
        model_script=script,
        log_level="WARNING",
    )


async def run_demo(*, workdir: Path, sandbox: str, say: Say) -> DemoResult:
    say("This is a simulation: a local stand-in for GitHub and a scripted model, on this")
    say("machine only. The sandbox, git, the store and Bosun's own code are the real ones.\n")
    private_key, public_key = app_key_pair()
    forge = Forge(workdir / "forge", app_id="1", public_key=public_key)
    forge_url = await forge.start()
    runner: web.AppRunner | None = None
    try:
        forge.create_repo(OWNER, NAME, REPO_FILES)
        forge.set_permission(OWNER, NAME, "alice", "write")
        number = forge.create_issue(OWNER, NAME, DEMO_ISSUE["title"], DEMO_ISSUE["body"], "alice")
        say(f"forge:  {forge_url}  (repository {OWNER}/{NAME}, issue #{number})")
        settings = demo_settings(
            workdir, forge_url=forge_url, private_key=private_key, sandbox=sandbox
        )
        app = create_app(settings, clock=SystemClock())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        say(f"bosun:  http://127.0.0.1:{port}  (sandbox: {sandbox}, store: {workdir / 'bosun.db'})")
        payload = forge.add_label(OWNER, NAME, number, "agent:fix-bug", "alice")
        say("\n@alice labels the issue `agent:fix-bug`; the forge delivers the webhook.")
        status = await deliver(f"http://127.0.0.1:{port}/webhook", "issues", payload)
        say(f"bosun answered {status}")
        task = await wait_for_task(app[STORE], number)
        await runs_finished(app)
        show(forge, number, say)
        say(f"\nwhere the data lives: {workdir}")
        say(f"  store        {workdir / 'bosun.db'}")
        say(f"  forge repos  {workdir / 'forge'}")
        say(f"  pages        {forge_url}/{OWNER}/{NAME}/pull/{task.pr_number or ''}")
        return DemoResult(ok=task.state == TaskState.PR_OPEN, state=str(task.state))
    finally:
        if runner is not None:
            await runner.cleanup()
        await forge.stop()


async def deliver(url: str, event: str, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    headers = delivery_headers(body, secret=SECRET, event=event, delivery_id=os.urandom(8).hex())
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def wait_for_task(store: Store, number: int) -> Any:
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        tasks = await asyncio.to_thread(store.tasks.all, f"{OWNER}/{NAME}")
        mine = [task for task in tasks if task.issue_number == number]
        done = [t for t in mine if t.state in (*FINISHED_TASK_STATES, TaskState.PR_OPEN)]
        if done:
            return done[-1]
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the task did not finish within {TIMEOUT_S:.0f} s")


async def runs_finished(app: web.Application) -> None:
    """Wait for the worker to finish its last writes (status comment, check run)."""
    scheduler = app.get(SCHEDULER)
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while scheduler is not None and scheduler.running:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the worker did not finish within {TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.1)


def show(forge: Forge, number: int, say: Say) -> None:
    pulls = forge.pulls(OWNER, NAME)
    for pull in pulls:
        say(f"\n=== pull request #{pull['number']}: {pull['title']}")
        say(forge.pull_diff(OWNER, NAME, int(pull["number"])).rstrip())
        for run in forge.check_runs(OWNER, NAME, head_sha=pull["head"]["sha"]):
            say(f"\n=== check run {run['name']}: {run['conclusion']}")
            say(run["output"]["summary"])
    for comment in forge.comments(OWNER, NAME, number):
        say(f"\n=== status comment on issue #{number} (by {comment['user']['login']})")
        say(comment["body"])


def main(*, keep: bool, sandbox: str, say: Say = print) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bosun-demo-"))
    workdir.chmod(0o711)  # the sandbox user must reach the clones inside
    try:
        result = asyncio.run(run_demo(workdir=workdir, sandbox=sandbox, say=say))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    say(f"\ndemo {'finished' if result.ok else 'FAILED'}: the task ended {result.state}")
    if not keep:
        say("(the demo's files were removed; run `bosun demo --keep` to keep them)")
    return 0 if result.ok else 1
