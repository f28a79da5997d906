"""`bosun serve` with only a webhook secret runs on the embedded default and keeps intake rules."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.signing import SECRET, delivery_headers

EXAMPLES = Path(__file__).parent.parent / "examples" / "events"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")}
    env["BOSUN_WEBHOOK_SECRET"] = SECRET
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert (tmp_path / "bosun.db").exists(), "the embedded default store lives in the cwd"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"{url}/webhook", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def announced_oversize_status(url: str) -> int:
    """Announce a 26 MiB body, send 1 KiB of it: the answer must come without the rest."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-GitHub-Event: issues\r\nX-GitHub-Delivery: big\r\n"
            + f"Content-Length: {26 * 1024 * 1024}\r\n\r\n".encode()
            + b"{" * 1024
        )
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_serve_answers_the_intake_rules(served: str) -> None:
    """401 unsigned, 202 accepted, 200 duplicate, 413 oversized, 400 malformed: on a real server."""
    body = (EXAMPLES / "issues.labeled.json").read_bytes()
    headers = delivery_headers("issues", body, delivery_id="serve-1")
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert post(served, body, unsigned) == 401
    assert post(served, body, headers) == 202
    assert post(served, body, headers) == 200
    assert announced_oversize_status(served) == 413
    broken = b'{"action": '
    assert post(served, broken, delivery_headers("issues", broken)) == 400
