"""`bosun lint`: every problem in a checkout's `.bosun/` files, in file order."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from bot.config.effective import ORG_POLICY_LABEL, effective_config
from bot.config.load import POLICY_PATH, Problem, read_checkout
from bot.config.yamlsafe import MAX_BYTES
from bot.core.errors import ConfigError


def lint_checkout(path: Path, *, org: Path | None = None) -> list[Problem]:
    """The problems of the `.bosun/` files under `path`, sorted, with checkout-relative paths.

    With `org` (an org policy file, or a checkout of the org's `.github` repository), the
    repository's policy is also checked against the org's ceilings; problems in the org's
    file are reported at the path given. A checkout without a `.bosun/` directory is itself
    a problem, reported at `.bosun:0:0`.
    """
    if not (path / ".bosun").is_dir():
        return [Problem(".bosun", 0, 0, f"no .bosun/ directory in {path}")]
    try:
        files = read_checkout(path)
        org_files, label = read_org_policy(org) if org is not None else (None, ORG_POLICY_LABEL)
    except ConfigError as exc:
        return [Problem.from_error(exc)]
    found = effective_config(repo_files=files, org_files=org_files, org_label=label).problems
    return sorted(found)


def read_org_policy(org: Path) -> tuple[dict[str, bytes], str]:
    """The org policy at `org` (a file, or a checkout holding `.bosun/policy.yaml`), and its label.

    Raises `ConfigError` when there is no such file or it cannot be read.
    """
    target = org / POLICY_PATH if org.is_dir() else org
    label = org_label(org)
    if not target.is_file():
        raise ConfigError("no org policy file here", path=label, line=0, col=0)
    try:
        with target.open("rb") as handle:
            return {POLICY_PATH: handle.read(MAX_BYTES + 1)}, label
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=label, line=0, col=0) from exc


def org_label(org: Path) -> str:
    """The path problems in the org policy at `org` are reported at."""
    return (org / POLICY_PATH if org.is_dir() else org).as_posix()


def workflow_command(problem: Problem, *, checkout: Path, org: Path | None, root: Path) -> str:
    """`problem` as a GitHub Actions `::error` workflow command: an annotation on its file.

    GitHub wants the file relative to the repository, taken to be `root` (the step's working
    directory): the checkout's problems are joined to `checkout`, the org's kept as given.
    """
    in_org = org is not None and problem.path == org_label(org)
    file = Path(os.path.normpath(problem.path if in_org else checkout / problem.path))
    if file.is_absolute():
        with contextlib.suppress(ValueError):
            file = file.relative_to(root.absolute())
    properties = [f"file={_escape_property(file.as_posix())}"]
    if problem.line:
        properties.append(f"line={problem.line}")
        if problem.col:
            properties.append(f"col={problem.col}")
    properties.append("title=bosun lint")
    return f"::error {','.join(properties)}::{_escape_data(problem.message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
