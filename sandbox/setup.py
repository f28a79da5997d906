"""Operator set-up for the sandbox: the unprivileged user, and a start-up check."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from sandbox.backends.base import Backend, SandboxError, require_tool
from sandbox.backends.bubblewrap import NAMESPACES, BubblewrapBackend, system_binds

_SMOKE_TIMEOUT_S = 10.0
# Switches that turn off or restrict unprivileged user namespaces, which bwrap needs.
_USERNS_SWITCHES = (
    ("/proc/sys/user/max_user_namespaces", "0", "user namespaces are disabled"),
    ("/proc/sys/kernel/unprivileged_userns_clone", "0", "unprivileged user namespaces are off"),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "AppArmor restricts unprivileged user namespaces (bwrap needs a profile)",
    ),
)


def useradd_argv(name: str) -> list[str]:
    """The command that creates the sandbox user: a system account with no home and no login."""
    return [
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        "--user-group",
        name,
    ]


def _hint(name: str) -> str:
    return " ".join(useradd_argv(name))


def ensure_sandbox_user(name: str = "bosun-sandbox") -> None:
    """Create the sandbox user if it is missing; only root can, others are told what to run."""
    if _user_exists(name):
        return
    if os.geteuid() != 0:
        raise SandboxError(f"the sandbox user {name!r} does not exist; as root, run: {_hint(name)}")
    argv = useradd_argv(name)
    argv[0] = require_tool("useradd")
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 -- fixed argv
    if done.returncode != 0:
        raise SandboxError(f"useradd {name} failed: {done.stderr.strip()}")


def check_sandbox(backend: Backend) -> list[str]:
    """What stops the backend from isolating commands, for a start-up check; empty when fine."""
    if not isinstance(backend, BubblewrapBackend):
        return []
    problems = _missing_tools() + _userns_problems()
    if os.geteuid() == 0 and not _user_exists(backend.sandbox_user):
        problems.append(
            f"the sandbox user {backend.sandbox_user!r} does not exist: "
            f"run {_hint(backend.sandbox_user)}"
        )
    return problems or _smoke_test(backend)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _missing_tools() -> list[str]:
    problems = []
    for tool, package in (
        ("bwrap", "bubblewrap"),
        ("setpriv", "util-linux"),
        ("prlimit", "util-linux"),
    ):
        try:
            require_tool(tool)
        except SandboxError:
            problems.append(f"{tool} is not installed (Debian package {package})")
    return problems


def _userns_problems() -> list[str]:
    problems = []
    for path, bad, meaning in _USERNS_SWITCHES:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value == bad:
            problems.append(f"{meaning} ({path} is {value})")
    return problems


def _smoke_test(backend: BubblewrapBackend) -> list[str]:
    """Start an empty sandbox the way runs do, and report bwrap's own words if it cannot."""
    argv = [
        *backend.launcher(backend.identity()),
        *NAMESPACES,
        *system_binds(),
        *("--proc", "/proc", "--dev", "/dev"),
        *("--", "/usr/bin/true"),
    ]
    try:
        done = subprocess.run(  # noqa: S603 -- argv built here from fixed parts
            argv, capture_output=True, text=True, timeout=_SMOKE_TIMEOUT_S, check=False, cwd="/"
        )
    except subprocess.TimeoutExpired:
        return ["bubblewrap did not start an empty sandbox within 10 s"]
    if done.returncode != 0:
        return [f"bubblewrap cannot start a sandbox: {done.stderr.strip()}"]
    return []
