"""The `bosun` command starts fast and says what it can do."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from bot.cli import main

HEAVY = ["aiohttp", "sqlalchemy", "sqlmodel", "gidgethub", "pydantic", "litellm", "alembic", "yaml"]


def test_help_names_every_command() -> None:
    """`bosun --help` is where an operator starts: it lists serve, lint, bench and schema."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "lint", "bench", "schema"):
        assert command in result.output


def test_help_imports_no_heavy_library() -> None:
    """Heavy libraries load inside commands only, so `bosun --help` stays well under 0.5 s."""
    code = (
        "import sys; from bot.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_serve_refuses_to_start_without_a_webhook_secret(tmp_path: object) -> None:
    """Bosun never runs unsigned: without BOSUN_WEBHOOK_SECRET, serve exits 1 and says why."""
    result = CliRunner().invoke(main, ["serve"], env={"BOSUN_WEBHOOK_SECRET": ""})
    assert result.exit_code == 1
    assert "BOSUN_WEBHOOK_SECRET" in result.output
