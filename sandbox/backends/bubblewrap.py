"""The default backend: bubblewrap as an unprivileged user, read-only system, no network."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import stat
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbox.backends.base import (
    DEFAULT_PATH,
    MIB,
    Limits,
    RunResult,
    SandboxError,
    require_tool,
    run_tree,
    wait_uninterrupted,
)

WORKSPACE = "/workspace"
HOSTNAME = "bosun-sandbox"
# The sandbox's own private tmpfs mounts, never the host's.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_SHM = "/dev/shm"  # noqa: S108
_HIDDEN_GIT = f"{WORKSPACE}/.git"
# On merged-/usr systems these are symlinks into /usr; elsewhere they are real directories.
_TOP_LEVEL_SYSTEM = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the dynamic linker, Debian's alternatives, TLS, Python and name lookup read from /etc.
# Users, groups and hosts are written fresh for each run; nothing else of /etc is shown.
_ETC = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/mime.types",
    "/etc/protocols",
    "/etc/services",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",
)
NAMESPACES = (
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--hostname",
    HOSTNAME,
)
_LAUNCHER_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
_PRLIMIT = "/usr/bin/prlimit"


@dataclass(frozen=True)
class Identity:
    """Who runs bwrap: the sandbox user when the host is root, else the host user itself."""

    name: str
    uid: int
    gid: int
    drops_root: bool


class BubblewrapBackend:
    """Runs each command in a fresh bubblewrap sandbox with the worktree at `/workspace`."""

    name = "bubblewrap"

    def __init__(self, *, sandbox_user: str = "bosun-sandbox", ro_binds: Sequence[str] = ()):
        self.sandbox_user = sandbox_user
        self.ro_binds = tuple(ro_binds)

    def identity(self) -> Identity:
        """The user the sandbox runs as; a `SandboxError` when root has no user to drop to."""
        if os.geteuid() != 0:
            uid, gid = os.getuid(), os.getgid()
            return Identity(name=_user_name(uid), uid=uid, gid=gid, drops_root=False)
        try:
            entry = pwd.getpwnam(self.sandbox_user)
        except KeyError:
            raise SandboxError(
                f"the sandbox user {self.sandbox_user!r} does not exist; create it with "
                f"`useradd --system --no-create-home --shell /usr/sbin/nologin --user-group "
                f"{self.sandbox_user}` or sandbox.setup.ensure_sandbox_user()"
            ) from None
        if entry.pw_uid == 0:
            raise SandboxError(f"the sandbox user {self.sandbox_user!r} must not be uid 0")
        return Identity(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, drops_root=True)

    def launcher(self, who: Identity) -> list[str]:
        """bwrap, behind `setpriv` dropping every privilege of root when the host is root."""
        bwrap = require_tool("bwrap")
        if not who.drops_root:
            return [bwrap]
        return [
            require_tool("setpriv"),
            f"--reuid={who.uid}",
            f"--regid={who.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            bwrap,
        ]

    async def run(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits
    ) -> RunResult:
        who = self.identity()
        worktree = checked_worktree(cwd, who)
        launcher = self.launcher(who)
        async with lent_worktree(worktree, who):
            with _memfds(_identity_files(who)) as files:
                args = bwrap_args(
                    worktree=worktree, env=env, limits=limits, files=files, ro_binds=self.ro_binds
                )
                with _memfds({"--args": _nul_joined(args)}) as fds:
                    command = [*launcher, "--args", str(fds["--args"]), "--"]
                    command += [*limits.prlimit_argv(_PRLIMIT), *argv]
                    return await run_tree(
                        command,
                        cwd=Path("/"),
                        env=_LAUNCHER_ENV,
                        limits=limits,
                        pass_fds=[*files.values(), *fds.values()],
                    )


def bwrap_args(
    *,
    worktree: Path,
    env: Mapping[str, str],
    limits: Limits,
    files: Mapping[str, int],
    ro_binds: Sequence[str] = (),
) -> list[str]:
    """The bwrap options for one run; `files` maps /etc paths to fds holding their content."""
    tmp_size = str(limits.memory_mb * MIB)
    return [
        *NAMESPACES,
        *system_binds(),
        *_try_ro_binds([*_ETC, *glob.glob("/etc/python3*")]),
        *_data_binds(files),
        *("--proc", "/proc", "--dev", "/dev"),
        *("--size", tmp_size, "--tmpfs", SANDBOX_SHM, "--size", tmp_size, "--tmpfs", SANDBOX_TMP),
        *_try_ro_binds(ro_binds),
        *_workspace_binds(worktree),
        *("--remount-ro", "/", "--chdir", WORKSPACE, "--clearenv"),
        *_env_args(env),
    ]


def system_binds() -> list[str]:
    """Read-only /usr, and /bin, /lib and friends as the host has them (symlinks or directories)."""
    binds = ["--ro-bind", "/usr", "/usr"]
    for path in _TOP_LEVEL_SYSTEM:
        if os.path.islink(path):
            binds += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            binds += ["--ro-bind", path, path]
    return binds


def _try_ro_binds(paths: Sequence[str]) -> list[str]:
    return [arg for path in paths for arg in ("--ro-bind-try", path, path)]


def _data_binds(files: Mapping[str, int]) -> list[str]:
    return [
        arg
        for dest, fd in files.items()
        for arg in ("--perms", "0444", "--ro-bind-data", str(fd), dest)
    ]


def _workspace_binds(worktree: Path) -> list[str]:
    binds = ["--bind", str(worktree), WORKSPACE]
    git = worktree / ".git"
    if git.is_symlink():
        raise SandboxError(f"{git} is a symlink; refusing to guess what to hide")
    if git.is_dir():
        # The host's git later runs in this worktree: nothing of .git is shown, nothing planted.
        return [*binds, "--tmpfs", _HIDDEN_GIT, "--remount-ro", _HIDDEN_GIT]
    if git.exists():
        return [*binds, "--ro-bind", "/dev/null", _HIDDEN_GIT]
    return binds


def _env_args(env: Mapping[str, str]) -> list[str]:
    merged = {"PATH": DEFAULT_PATH, "HOME": SANDBOX_TMP, "LANG": "C.UTF-8", **env}
    for key, value in merged.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"unusable environment variable {key!r}")
    return [arg for key, value in merged.items() for arg in ("--setenv", key, value)]


def _identity_files(who: Identity) -> dict[str, bytes]:
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{who.name}:x:{who.uid}:{who.gid}:Bosun sandbox:/tmp:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\n{who.name}:x:{who.gid}:\nnogroup:x:65534:\n"
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n"
    return {
        "/etc/passwd": passwd.encode(),
        "/etc/group": group.encode(),
        "/etc/hosts": hosts.encode(),
    }


def _nul_joined(args: Sequence[str]) -> bytes:
    return b"".join(arg.encode() + b"\0" for arg in args)


@contextmanager
def _memfds(contents: Mapping[str, bytes]) -> Iterator[dict[str, int]]:
    """Anonymous in-memory files, rewound, so that nothing secret is spelled on a command line."""
    fds: dict[str, int] = {}
    try:
        for key, data in contents.items():
            fd = fds[key] = os.memfd_create("bosun-sandbox")
            os.write(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def checked_worktree(cwd: Path, who: Identity) -> Path:
    """The absolute worktree, once the sandbox user is known to be able to reach it."""
    if not cwd.is_absolute() or not cwd.is_dir():
        raise SandboxError(f"the worktree {cwd} must be an existing absolute directory")
    worktree = cwd.resolve()
    blocked = _unsearchable_parent(worktree, who) if who.drops_root else None
    if blocked is not None:
        raise SandboxError(
            f"{blocked} is not searchable by {who.name}, so bubblewrap cannot reach {worktree}; "
            f"keep workspaces under directories with mode 0711 or wider (chmod o+x {blocked})"
        )
    return worktree


def _unsearchable_parent(path: Path, who: Identity) -> Path | None:
    for parent in path.parents:
        info = parent.stat()
        if info.st_uid == who.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == who.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return parent
    return None


@asynccontextmanager
async def lent_worktree(worktree: Path, who: Identity) -> AsyncIterator[None]:
    """The worktree (but not .git) belongs to the sandbox user for the run, then back to its owner.

    Only when the host is root: a non-root host runs bwrap as itself and owns the files already.
    Returning strips set-user-ID and set-group-ID bits from everything the sandbox left.
    """
    if not who.drops_root:
        yield
        return
    owner = await asyncio.to_thread(worktree.stat)
    try:
        await _to_completion(_chown_tree, worktree, who.uid, who.gid)
        yield
    finally:
        await _to_completion(_chown_tree, worktree, owner.st_uid, owner.st_gid, strip_setid=True)


async def _to_completion(func: Callable[..., None], *args: object, **kwargs: object) -> None:
    """Run a blocking call in a thread; a cancellation waits for it to finish, then propagates.

    The worktree must never be left half lent: the return walk starts only after the first.
    """
    job = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    interrupted = await wait_uninterrupted(job)
    job.result()
    if interrupted:
        raise asyncio.CancelledError


def _chown_tree(root: Path, uid: int, gid: int, *, strip_setid: bool = False) -> None:
    _chown(str(root), None, uid, gid, strip_setid=strip_setid)
    # fwalk works through directory fds and never follows symlinks the sandbox may have made.
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root):
        if dirpath == str(root):
            dirnames[:] = [name for name in dirnames if name != ".git"]
            filenames[:] = [name for name in filenames if name != ".git"]
        for name in (*dirnames, *filenames):
            _chown(name, dirfd, uid, gid, strip_setid=strip_setid)


def _chown(name: str, dirfd: int | None, uid: int, gid: int, *, strip_setid: bool) -> None:
    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
    if strip_setid:
        _strip_setid(name, dirfd)


def _strip_setid(name: str, dirfd: int | None) -> None:
    mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
    if not stat.S_ISLNK(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(name, stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID), dir_fd=dirfd)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "sandbox"
