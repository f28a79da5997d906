"""`bosun bench webhook`: ack latency and throughput of intake beside a bare aiohttp endpoint."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.bench.report import machine_line, percentile
from bot.intake.signing import delivery_headers

SECRET = "bench-secret"  # noqa: S105 - the benchmark signs with its own throwaway secret
PAYLOAD = Path(__file__).with_name("issues_labeled.json")


@dataclass(frozen=True)
class Saturation:
    per_s: float
    requests: int
    accepted: int
    tool: str


def signed_headers(body: bytes) -> dict[str, str]:
    """Headers of a signed `issues` delivery; the delivery id is added per request."""
    headers = delivery_headers(body, secret=SECRET, event="issues", delivery_id="")
    del headers["X-GitHub-Delivery"]
    return headers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(argv: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_wait_until_up(url, process))
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"server exited: {err[-2000:]}")
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


async def paced(
    url: str, body: bytes, *, rate: int, seconds: float
) -> tuple[list[float], Counter[int]]:
    """Send `rate` deliveries per second on a fixed schedule; return ack latencies in ms."""
    headers = signed_headers(body)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            started = time.perf_counter()
            delivery = {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}
            async with session.post(f"{url}/webhook", data=body, headers=delivery) as response:
                await response.read()
                statuses[response.status] += 1
            latencies.append((time.perf_counter() - started) * 1000)

        total = int(rate * seconds)
        start = time.perf_counter()
        pending = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one()))
        await asyncio.gather(*pending)
    return latencies, statuses


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = io.open("{body}", "rb"):read()
{headers}
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = "{run}-" .. tid .. "-" .. counter
  return wrk.format()
end
"""


def saturate_with_wrk(url: str, body_file: Path, body: bytes, seconds: float) -> Saturation:
    headers = "\n".join(
        f'wrk.headers["{key}"] = "{value}"' for key, value in signed_headers(body).items()
    )
    script = body_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT.format(body=body_file, headers=headers, run=uuid.uuid4().hex[:12]))
    wrk = shutil.which("wrk") or "wrk"
    result = subprocess.run(  # noqa: S603 - wrk from the system
        [wrk, "-t1", "-c64", f"-d{max(1, round(seconds))}s", "-s", str(script), f"{url}/webhook"],
        check=True,
        capture_output=True,
        text=True,
    )
    out = result.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    per_s = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    return Saturation(per_s=per_s, requests=requests, accepted=requests - errors, tool="wrk")


async def saturate_with_python(url: str, body: bytes, seconds: float) -> Saturation:
    headers = signed_headers(body)
    deadline = time.perf_counter() + seconds
    counts: Counter[int] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                delivery = {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}
                async with session.post(f"{url}/webhook", data=body, headers=delivery) as r:
                    await r.read()
                    counts[r.status] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(64)))
        elapsed = time.perf_counter() - start
    total = sum(counts.values())
    return Saturation(total / elapsed, total, counts[202], "python-aiohttp")


def saturate(url: str, body_file: Path, body: bytes, seconds: float) -> Saturation:
    if shutil.which("wrk"):
        return saturate_with_wrk(url, body_file, body, seconds)
    return asyncio.run(saturate_with_python(url, body, seconds))


def stored_deliveries(database_url: str) -> int:
    from bot.core.clock import SystemClock
    from bot.store import Store

    store = Store.connect(database_url, clock=SystemClock())
    try:
        return store.deliveries.count()
    finally:
        store.close()


def run(*, seconds: float, rate: int, database_url: str | None) -> None:
    body = PAYLOAD.read_bytes()
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        db = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        env = {"BOSUN_WEBHOOK_SECRET": SECRET, "BOSUN_DATABASE_URL": db, "BOSUN_LOG_LEVEL": "ERROR"}
        bosun_port, bare_port = free_port(), free_port()
        bosun_argv = [sys.executable, "-m", "bot.cli", "serve", "--port", str(bosun_port)]
        bare_argv = [sys.executable, "-m", "bot.bench.bare", "--port", str(bare_port)]
        with server(bare_argv, {}, bare_port) as bare_url:
            bare = saturate(bare_url, body_file, body, seconds)
        with server(bosun_argv, env, bosun_port) as bosun_url:
            latencies, statuses = asyncio.run(paced(bosun_url, body, rate=rate, seconds=seconds))
            sat = saturate(bosun_url, body_file, body, seconds)
        stored = stored_deliveries(db)
    acked = statuses[202] + sat.accepted
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    ratio = sat.per_s / bare.per_s if bare.per_s else 0.0
    print(f"body: {len(body)} bytes signed issues.labeled; load tool: {sat.tool}")
    print(
        f"paced {rate}/s for {seconds:.0f} s: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        f"(target p99 < 20 ms), statuses {dict(statuses)}"
    )
    print(
        f"saturated: bosun {sat.per_s:.0f}/s, bare aiohttp {bare.per_s:.0f}/s, "
        f"ratio {ratio:.3f} (target >= 0.2)"
    )
    print(
        f"durability: {acked} acknowledged with 202, {stored} stored "
        f"({'every ack stored' if stored >= acked else 'ACKS LOST'})"
    )
    print(
        machine_line(
            "webhook",
            {
                "rate_per_s": rate,
                "p50_ms": p50,
                "p99_ms": p99,
                "bosun_per_s": sat.per_s,
                "bare_per_s": bare.per_s,
                "ratio": ratio,
                "acked": acked,
                "stored": stored,
            },
        )
    )
