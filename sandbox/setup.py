"""Operator set-up for the sandbox: the unprivileged user, and a start-up check."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.backends.base import Backend, SandboxError, require_tool
from sandbox.backends.bubblewrap import NAMESPACES, BubblewrapBackend, system_binds

_SMOKE_TIMEOUT_S = 10.0
# Switches that turn off or restrict unprivileged user namespaces, which bwrap needs.
# Each with the sysctl setting that turns it back on.
_USERNS_SWITCHES = (
    (
        "/proc/sys/user/max_user_namespaces",
        "0",
        "user namespaces are disabled",
        "user.max_user_namespaces=15000",
    ),
    (
        "/proc/sys/kernel/unprivileged_userns_clone",
        "0",
        "unprivileged user namespaces are off",
        "kernel.unprivileged_userns_clone=1",
    ),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "AppArmor restricts unprivileged user namespaces (bwrap needs a profile)",
        "kernel.apparmor_restrict_unprivileged_userns=0",
    ),
)
_TOOLS = (("bwrap", "bubblewrap"), ("setpriv", "util-linux"), ("prlimit", "util-linux"))

Which = Callable[[str], str | None]


@dataclass(frozen=True)
class SandboxProblem:
    """What stops the sandbox from isolating commands, and the command that fixes it, if any."""

    what: str
    fix: str | None = None

    def __str__(self) -> str:
        return f"{self.what}: run {self.fix}" if self.fix else self.what


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
    if user_exists(name):
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
    return [str(problem) for problem in sandbox_problems(backend)]


def sandbox_problems(backend: Backend, *, which: Which | None = None) -> list[SandboxProblem]:
    """`check_sandbox`'s findings with their fixes; `which` finds a host tool (None: missing).

    Tools are looked up where the sandbox itself looks (`require_tool`), not on `PATH`.
    """
    if not isinstance(backend, BubblewrapBackend):
        return []
    problems = missing_tools(which) + _userns_problems()
    if os.geteuid() == 0 and not user_exists(backend.sandbox_user):
        problems.append(
            SandboxProblem(
                f"the sandbox user {backend.sandbox_user!r} does not exist",
                _hint(backend.sandbox_user),
            )
        )
    return problems or _smoke_test(backend)


def find_tool(name: str) -> str | None:
    """Where the sandbox finds host tool `name`, or None."""
    try:
        return require_tool(name)
    except SandboxError:
        return None


def as_root(command: str) -> str:
    """`command` as this user would run it with root's rights: itself as root, else via sudo."""
    return command if os.geteuid() == 0 else f"sudo {command}"


def install_command(package: str) -> str:
    """The command that installs a Debian package on this machine."""
    if shutil.which("apt-get") is None:
        return f"install the package {package} with this system's package manager"
    return as_root(f"apt-get install -y {package}")


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def missing_tools(which: Which | None = None) -> list[SandboxProblem]:
    """The host tools the sandbox needs and cannot find, each with its install command."""
    which = which or find_tool
    return [
        SandboxProblem(
            f"{tool} is not installed (Debian package {package})", install_command(package)
        )
        for tool, package in _TOOLS
        if which(tool) is None
    ]


def _userns_problems() -> list[SandboxProblem]:
    problems = []
    for path, bad, meaning, setting in _USERNS_SWITCHES:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value == bad:
            problems.append(
                SandboxProblem(f"{meaning} ({path} is {value})", as_root(f"sysctl -w {setting}"))
            )
    return problems


def _smoke_test(backend: BubblewrapBackend) -> list[SandboxProblem]:
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
        return [SandboxProblem("bubblewrap did not start an empty sandbox within 10 s")]
    if done.returncode != 0:
        return [SandboxProblem(f"bubblewrap cannot start a sandbox: {done.stderr.strip()}")]
    return []
