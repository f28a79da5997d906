"""`bosun lint`: every problem in a checkout's `.bosun/` files, in file order."""

from __future__ import annotations

from pathlib import Path

from bot.config.load import Problem, load_config, read_checkout
from bot.errors import ConfigError


def lint_checkout(path: Path) -> list[Problem]:
    """The problems of the `.bosun/` files under `path`, sorted, with checkout-relative paths.

    A checkout without a `.bosun/` directory is itself a problem, reported at `.bosun:0:0`.
    """
    if not (path / ".bosun").is_dir():
        return [Problem(".bosun", 0, 0, f"no .bosun/ directory in {path}")]
    try:
        files = read_checkout(path)
    except ConfigError as exc:
        return [Problem.from_error(exc)]
    return sorted(load_config(files).problems)
