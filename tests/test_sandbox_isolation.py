"""What a command inside the bubblewrap sandbox can and cannot do, checked as root as in CI."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import secrets
import shutil
import stat
from pathlib import Path

import pytest

from sandbox.backends import BubblewrapBackend, Limits, ProcessBackend, RunResult, make_backend
from sandbox.backends.base import SandboxError
from sandbox.backends.bubblewrap import bwrap_args
from sandbox.setup import check_sandbox, ensure_sandbox_user
from tests.sandbox_fixtures import sleepers, unique_sleep, wait_until_gone

# The host's own /tmp, which a sandbox must never write to.
HOST_TMP = "/tmp"  # noqa: S108


def owner(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_uid, info.st_gid


def owners(tree: Path) -> set[tuple[int, int]]:
    return {owner(path) for path in tree.rglob("*")}


def exists(path: str) -> bool:
    return os.path.lexists(path)


async def sh(
    backend: BubblewrapBackend,
    script: str,
    *,
    cwd: Path,
    limits: Limits,
    env: dict[str, str] | None = None,
) -> RunResult:
    return await backend.run(["sh", "-c", script], cwd=cwd, env=env or {}, limits=limits)


async def test_writes_in_the_worktree_reach_the_host_owned_by_the_host_user(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """The agent's edits land in the worktree, and the host owns them after the run."""
    result = await sh(
        bubblewrap,
        "mkdir -p src && echo new > src/new.txt && echo more >> README.md",
        cwd=worktree,
        limits=short_limits,
    )
    assert result.exit_code == 0, result.stderr
    assert (worktree / "src" / "new.txt").read_text() == "new\n"
    assert (worktree / "README.md").read_text() == "hello\nmore\n"
    for path in (worktree / "src", worktree / "src" / "new.txt", worktree / "README.md"):
        assert owner(path) == owner(worktree)


async def test_runs_as_the_unprivileged_sandbox_user_without_capabilities(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits, sandbox_user: str
) -> None:
    """Inside, the command is the sandbox user, holds no capability, and creates files as it."""
    result = await sh(
        bubblewrap,
        "id -u; touch inside; stat -c %u inside; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status",
        cwd=worktree,
        limits=short_limits,
    )
    uid = pwd.getpwnam(sandbox_user).pw_uid
    lines = result.stdout.splitlines()
    assert uid != 0
    assert lines[:2] == [str(uid), str(uid)]
    assert all(line.endswith("0000000000000000") for line in lines[2:]), lines


async def test_cannot_write_outside_the_worktree(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """The system is read-only, and /tmp is private to the run and gone after it."""
    name = f"bosun-escape-{secrets.token_hex(4)}"
    targets = [f"/usr/{name}", f"/usr/bin/{name}", f"/etc/{name}", f"/{name}", f"/var/{name}"]
    script = f"for p in {' '.join(targets)}; do touch $p 2>/dev/null && echo wrote $p; done"
    result = await sh(
        bubblewrap, f"{script}; echo private > /tmp/{name}", cwd=worktree, limits=short_limits
    )
    assert result.exit_code == 0, result.stderr
    assert "wrote" not in result.stdout
    assert not any(map(exists, [*targets, f"{HOST_TMP}/{name}"]))
    again = await sh(bubblewrap, f"cat /tmp/{name}", cwd=worktree, limits=short_limits)
    assert again.exit_code != 0


async def test_cannot_remount_or_gain_privileges(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """Remounting / or /usr read-write fails, and no new user namespace can restore root."""
    script = (
        "mount -o remount,rw / && echo remounted /; "
        "mount -o remount,rw /usr && echo remounted /usr; "
        "unshare --user --map-root-user true && echo new userns; "
        "touch /usr/bosun-remount-probe && echo wrote /usr"
    )
    result = await sh(bubblewrap, script, cwd=worktree, limits=short_limits)
    assert result.stdout == ""
    assert not exists("/usr/bosun-remount-probe")


async def test_cannot_read_host_secrets(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """/etc/shadow, /root and /home are not there; /etc/passwd lists only sandbox accounts."""
    script = (
        "for p in /etc/shadow /etc/gshadow /root /home; do [ -e $p ] && echo visible $p; done; "
        "cut -d: -f1 /etc/passwd"
    )
    result = await sh(bubblewrap, script, cwd=worktree, limits=short_limits)
    assert result.stdout.split() == ["root", "bosun-sandbox", "nobody"], result.stdout


async def test_cannot_see_the_worktrees_git_directory(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """/workspace/.git is empty and read-only: nothing of the host's git shows or can be planted."""
    script = (
        "ls -A /workspace/.git; cat /workspace/.git/config; "
        "mkdir /workspace/.git/hooks && echo planted; "
        "echo 'touch /tmp/pwned' > /workspace/.git/hooks/pre-commit && echo planted"
    )
    result = await sh(bubblewrap, script, cwd=worktree, limits=short_limits)
    assert result.stdout == ""
    assert (worktree / ".git" / "config").read_text() == "[core]\n\tsecret = from-the-host\n"
    assert os.listdir(worktree / ".git" / "hooks") == []
    assert owner(worktree / ".git") == owner(worktree)


async def test_cannot_reach_the_network(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """No network: the host's loopback is unreachable and no route leads anywhere else.

    The outside check is a UDP connect to TEST-NET-1, which only looks up a route and sends
    nothing; the only packets this test can cause go to the host's own 127.0.0.1.
    """
    connections: list[str] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('tcp ok')\n"
        "except OSError as exc:\n"
        "    print('tcp', exc.errno)\n"
        "udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    udp.connect(('192.0.2.1', 9)); print('udp routed')\n"
        "except OSError as exc:\n"
        "    print('udp', exc.errno)\n"
        "devices = [line.split(':')[0].strip() for line in open('/proc/net/dev') if ':' in line]\n"
        "print(*devices)\n"
    )
    async with server:
        result = await bubblewrap.run(
            ["/usr/bin/python3", "-c", probe], cwd=worktree, env={}, limits=short_limits
        )
    assert result.stdout.splitlines() == ["tcp 111", "udp 101", "lo"], result.stderr
    assert connections == []


async def test_cannot_see_host_processes(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """/proc shows only the run's own processes: not pytest, not the test's pid, not init."""
    script = 'for d in /proc/[0-9]*; do echo "${d#/proc/} $(tr "\\0" " " < $d/cmdline)"; done'
    result = await sh(bubblewrap, script, cwd=worktree, limits=short_limits)
    seen = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert len(seen) <= 4, seen
    assert "bwrap" in seen["1"]
    assert str(os.getpid()) not in seen
    assert "pytest" not in result.stdout


async def test_cannot_see_the_host_environment(
    bubblewrap: BubblewrapBackend,
    worktree: Path,
    short_limits: Limits,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the given variables plus PATH, HOME and LANG exist inside; values stay off argv."""
    canary = secrets.token_hex(8)
    monkeypatch.setenv("BOSUN_CANARY", canary)
    given = f"gateway-token-{secrets.token_hex(8)}"
    result = await sh(
        bubblewrap,
        "env; echo ---; tr '\\0' ' ' < /proc/1/cmdline",
        cwd=worktree,
        limits=short_limits,
        env={"GATEWAY_TOKEN": given},
    )
    environment, _, bwrap_argv = result.stdout.partition("---\n")
    names = {line.split("=", 1)[0] for line in environment.splitlines()}
    assert names <= {"PATH", "HOME", "LANG", "PWD", "GATEWAY_TOKEN"}
    assert {f"GATEWAY_TOKEN={given}", "HOME=/tmp"} <= set(environment.splitlines())
    assert canary not in result.stdout
    assert "bwrap" in bwrap_argv
    assert given not in bwrap_argv


async def test_cpu_limit_kills_a_busy_loop(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """A command that burns its CPU seconds is killed, well before the wall-clock limit."""
    busy = dataclasses.replace(short_limits, cpu_seconds=1)
    result = await sh(bubblewrap, "while :; do :; done", cwd=worktree, limits=busy)
    assert result.exit_code in (128 + 9, 128 + 24)
    assert not result.timed_out
    assert result.duration_s < 5


async def test_memory_limit_stops_an_allocation(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """Allocating past the memory limit fails inside the command."""
    small = dataclasses.replace(short_limits, memory_mb=128)
    result = await bubblewrap.run(
        ["python3", "-c", "bytearray(1 << 30)"], cwd=worktree, env={}, limits=small
    )
    assert result.exit_code == 1
    assert "MemoryError" in result.stderr


async def test_process_limit_stops_a_fork_bomb(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """A command cannot run more processes than max_processes."""
    few = dataclasses.replace(short_limits, max_processes=8)
    probe = (
        "import os, time\n"
        "count = 0\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "    count += 1\n"
        "print(count)\n"
    )
    result = await bubblewrap.run(["python3", "-c", probe], cwd=worktree, env={}, limits=few)
    assert result.exit_code == 0, result.stderr
    assert int(result.stdout) < 8


async def test_wall_timeout_kills_the_command_and_its_children(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """At the wall-clock limit the whole tree dies; no process of the run is left behind."""
    marker = unique_sleep()
    short = dataclasses.replace(short_limits, wall_seconds=0.5)
    result = await sh(bubblewrap, f"sleep {marker} & sleep {marker}", cwd=worktree, limits=short)
    assert result.timed_out
    assert result.exit_code is None
    assert result.duration_s < 3
    assert wait_until_gone(marker) == []


async def test_cancelling_the_run_kills_the_tree_and_returns_the_worktree(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits, sandbox_user: str
) -> None:
    """While it runs, what the sandbox makes is the sandbox user's, seen from the host too.
    Cancelling the awaiting task kills every process of the run, hands the worktree back to
    its owner, and re-raises CancelledError."""
    marker = unique_sleep()
    run = asyncio.create_task(
        sh(
            bubblewrap,
            f"touch left-behind; sleep {marker} & sleep {marker}",
            cwd=worktree,
            limits=short_limits,
        )
    )
    for _ in range(200):
        if len(sleepers(marker)) == 2:
            break
        await asyncio.sleep(0.01)
    entry = pwd.getpwnam(sandbox_user)
    assert owner(worktree / "left-behind") == (entry.pw_uid, entry.pw_gid) != (0, 0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert wait_until_gone(marker) == []
    assert owner(worktree / "left-behind") == owner(worktree) == (os.geteuid(), os.getegid())


@pytest.mark.parametrize("delay", [0, 0.002, 0.01, 0.03, 0.08])
async def test_a_cancellation_at_any_moment_leaves_nothing_behind(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits, delay: float
) -> None:
    """Cancelled while starting, lending the worktree, running or cleaning up, and even
    cancelled twice: no process survives and the worktree is the host's again."""
    marker = unique_sleep()
    script = f"sleep {marker} & sleep {marker}"
    run = asyncio.create_task(sh(bubblewrap, script, cwd=worktree, limits=short_limits))
    await asyncio.sleep(delay)
    run.cancel()
    await asyncio.sleep(delay / 2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert wait_until_gone(marker) == []
    assert owners(worktree) == {owner(worktree)}


async def test_output_flood_is_capped_to_its_tail(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """A command that floods stdout finishes; only the last max_output_bytes are kept."""
    result = await sh(
        bubblewrap,
        "head -c 5000000 /dev/zero | tr '\\0' a; echo; echo END",
        cwd=worktree,
        limits=short_limits,
    )
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.stdout) == short_limits.max_output_bytes
    assert result.stdout.endswith("a\nEND\n")


async def test_set_id_bits_do_not_survive_the_return_to_the_host(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """A file the sandbox marks set-user-ID or set-group-ID comes back to the host without them."""
    script = "cp /usr/bin/id ./id-copy && chmod 6755 ./id-copy && stat -c %a ./id-copy"
    result = await sh(bubblewrap, script, cwd=worktree, limits=short_limits)
    assert result.stdout.strip() == "6755"
    assert not os.lstat(worktree / "id-copy").st_mode & (stat.S_ISUID | stat.S_ISGID)
    assert owner(worktree / "id-copy") == owner(worktree)


async def test_a_symlink_left_in_the_worktree_never_hands_its_target_over(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """Ownership moves only along the worktree itself, never through symlinks it contains."""
    target = worktree.parent / "host-owned.txt"
    target.write_text("host\n")
    result = await sh(
        bubblewrap, f"ln -s {target} link; ln -s / root-link", cwd=worktree, limits=short_limits
    )
    assert result.exit_code == 0, result.stderr
    await sh(bubblewrap, "true", cwd=worktree, limits=short_limits)
    assert owner(target) == owner(worktree)
    assert owner(Path("/")) == (0, 0)


async def test_extra_read_only_directories_are_shown_read_only(
    sandbox_user: str, worktree: Path, short_limits: Limits
) -> None:
    """Directories the operator adds (a toolchain under /opt, say) are visible and read-only."""
    backend = BubblewrapBackend(sandbox_user=sandbox_user, ro_binds=[str(worktree.parent)])
    script = f"cat {worktree}/README.md && touch {worktree.parent}/x 2>/dev/null || echo read-only"
    result = await sh(backend, script, cwd=worktree, limits=short_limits)
    assert result.stdout == "hello\nread-only\n"


def test_a_git_file_is_covered_and_a_git_symlink_refused(
    worktree: Path, short_limits: Limits
) -> None:
    """Whatever form .git takes, the sandbox never gets to write it."""
    shutil.rmtree(worktree / ".git")
    (worktree / ".git").write_text("gitdir: /somewhere/else\n")
    args = bwrap_args(worktree=worktree, env={}, limits=short_limits, files={})
    assert "\0--ro-bind\0/dev/null\0/workspace/.git\0" in "\0".join(["", *args, ""])
    (worktree / ".git").unlink()
    (worktree / ".git").symlink_to("/etc")
    with pytest.raises(SandboxError, match="symlink"):
        bwrap_args(worktree=worktree, env={}, limits=short_limits, files={})


def test_unusable_environment_names_are_refused(worktree: Path, short_limits: Limits) -> None:
    """An environment name that would smuggle a second assignment is an error, not a guess."""
    with pytest.raises(ValueError, match="unusable environment variable"):
        bwrap_args(worktree=worktree, env={"A=B": "c"}, limits=short_limits, files={})


async def test_a_worktree_the_sandbox_user_cannot_reach_is_refused(
    bubblewrap: BubblewrapBackend, worktree: Path, short_limits: Limits
) -> None:
    """A worktree below a directory closed to the sandbox user is refused with what to change."""
    closed = worktree.parent / "closed"
    (closed / "worktree").mkdir(parents=True)
    closed.chmod(0o700)
    with pytest.raises(SandboxError, match=f"chmod o\\+x {closed}"):
        await sh(bubblewrap, "true", cwd=closed / "worktree", limits=short_limits)


async def test_a_missing_sandbox_user_is_an_error_naming_the_fix(
    worktree: Path, short_limits: Limits
) -> None:
    """Root never runs bwrap itself: without the sandbox user the run is refused."""
    backend = BubblewrapBackend(sandbox_user="bosun-no-such-user")
    with pytest.raises(SandboxError, match="useradd"):
        await sh(backend, "true", cwd=worktree, limits=short_limits)


def test_check_sandbox_passes_on_a_prepared_host(bubblewrap: BubblewrapBackend) -> None:
    """The start-up check finds nothing wrong where bwrap, the user and user namespaces exist."""
    assert check_sandbox(bubblewrap) == []
    assert check_sandbox(ProcessBackend()) == []


def test_check_sandbox_names_a_missing_user(sandbox_user: str) -> None:
    """The start-up check says which user is missing and the command that creates it."""
    problems = check_sandbox(BubblewrapBackend(sandbox_user="bosun-no-such-user"))
    assert problems == [
        "the sandbox user 'bosun-no-such-user' does not exist: run useradd --system "
        "--no-create-home --shell /usr/sbin/nologin --user-group bosun-no-such-user"
    ]


def test_ensure_sandbox_user_is_idempotent(sandbox_user: str) -> None:
    """Creating the sandbox user twice is harmless."""
    ensure_sandbox_user(sandbox_user)
    assert pwd.getpwnam(sandbox_user).pw_uid != 0


def test_ensure_sandbox_user_tells_a_non_root_operator_what_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without root, a missing user is an error that spells out the useradd command."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxError, match="as root, run: useradd --system"):
        ensure_sandbox_user("bosun-no-such-user")


def test_make_backend_defaults_to_bubblewrap(caplog: pytest.LogCaptureFixture) -> None:
    """The default backend isolates, and choosing it logs no warning."""
    backend = make_backend("bubblewrap", sandbox_user="someone")
    assert isinstance(backend, BubblewrapBackend)
    assert backend.sandbox_user == "someone"
    assert caplog.records == []
