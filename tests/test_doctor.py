"""`bosun doctor` names what is missing with the command that fixes it; demo and serve say it
in one line instead of a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import create_engine, text

import bot.doctor
from bot.cli import main
from bot.doctor import (
    Check,
    check_bubblewrap,
    check_database,
    check_model_keys,
    check_prices,
    check_private_key,
    check_webhook_secret,
    require_sandbox,
)
from bot.store import Store, migrations
from bot.store.migrate import upgrade
from tests.fakeclock import FakeClock

ROOT = Path(__file__).resolve().parents[1]
# `bosun demo` in a fresh interpreter that cannot find bwrap, however it looks for it.
WITHOUT_BWRAP = (
    "import shutil, sys\n"
    "found = shutil.which\n"
    "shutil.which = lambda name, *a, **k: None if name == 'bwrap' else found(name, *a, **k)\n"
    "from bot.cli import main\n"
    "main(['demo'])\n"
)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def bin_without_bwrap(tmp_path: Path) -> Path:
    """A PATH directory holding the sandbox's other tools, and no bwrap."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("setpriv", "prlimit"):
        found = shutil.which(tool)
        assert found is not None
        (directory / tool).symlink_to(found)
    return directory


def test_a_missing_bwrap_is_missing_with_the_install_command(tmp_path: Path) -> None:
    """With no bwrap on the PATH searched, the check says so and how to install it."""
    directory = str(bin_without_bwrap(tmp_path))
    check = check_bubblewrap(
        "bubblewrap", "bosun-sandbox", which=lambda name: shutil.which(name, path=directory)
    )
    assert not check.ok and check.blocking
    assert check.detail == "bwrap is not installed (Debian package bubblewrap)"
    assert check.fix is not None and check.fix.endswith("apt-get install -y bubblewrap")
    assert check.line().startswith("missing bubblewrap: bwrap is not installed")
    assert "— fix: " in check.line() and "\n" not in check.line()


def test_bubblewrap_here_starts_an_isolated_sandbox(sandbox_user: str) -> None:
    """On this machine (bwrap installed) the check runs a real empty sandbox."""
    check = check_bubblewrap("bubblewrap", sandbox_user)
    assert check.ok, check.line()
    assert "starts an isolated sandbox" in check.detail


def test_the_process_sandbox_is_a_note_not_a_failure() -> None:
    check = check_bubblewrap("process", "bosun-sandbox")
    assert check.status == "note" and not check.blocking
    assert "WITHOUT isolation" in check.detail


def test_require_sandbox_raises_one_fixable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """What demo and serve refuse with: the problem and its fix, as one exception."""
    from bot.core.errors import SandboxUnavailable

    monkeypatch.setattr("sandbox.setup.find_tool", lambda name: None)
    with pytest.raises(SandboxUnavailable) as raised:
        require_sandbox("bubblewrap", "bosun-sandbox")
    assert "bwrap is not installed" in str(raised.value)
    assert raised.value.fix is not None and "apt-get install -y bubblewrap" in raised.value.fix
    require_sandbox("process", "bosun-sandbox")  # no isolation asked for: nothing to check


def test_a_bad_private_key_is_missing() -> None:
    """Text that is not a PEM key, and a key that is not RSA, are both refused."""
    check = check_private_key({"BOSUN_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nnope\n"})
    assert not check.ok and check.detail == "BOSUN_PRIVATE_KEY is not a PEM private key"
    assert check.fix is not None and "BOSUN_PRIVATE_KEY_FILE" in check.fix
    ec_key = pem(ec.generate_private_key(ec.SECP256R1()))
    check = check_private_key({"BOSUN_PRIVATE_KEY": ec_key})
    assert not check.ok and "App keys are RSA" in check.detail


def test_a_private_key_file_that_is_missing_or_valid(tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    check = check_private_key({"BOSUN_PRIVATE_KEY_FILE": str(key_file)})
    assert not check.ok and "cannot be read: No such file or directory" in check.detail
    key_file.write_text(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    check = check_private_key({"BOSUN_PRIVATE_KEY_FILE": str(key_file)})
    assert check.ok and check.detail.endswith("is an RSA 2048-bit PEM key"), check.detail
    flattened = key_file.read_text().replace("\n", "\\n")  # as environments often hold it
    assert check_private_key({"BOSUN_PRIVATE_KEY": flattened}).ok
    assert not check_private_key({}).ok


def test_a_missing_webhook_secret_is_missing() -> None:
    for value in (None, ""):
        check = check_webhook_secret(value)
        assert not check.ok and check.blocking
        assert check.fix is not None and check.fix.startswith("export BOSUN_WEBHOOK_SECRET=")
    assert check_webhook_secret("s3cret").ok


def test_a_reachable_migrated_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bosun.db'}"
    assert check_database(url).ok  # not there yet: serve creates it
    store = Store.connect(url, clock=FakeClock())
    store.migrate()
    store.close()
    check = check_database(url)
    assert check.ok and "reachable and migrated" in check.detail, check.line()


def test_sqlite_behind_ahead_or_nowhere(tmp_path: Path) -> None:
    """Pending migrations are fine (serve applies them); an unknown revision or directory is not."""
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine, "0003")
    engine.dispose()
    check = check_database(f"sqlite:///{path}")
    versions = Path(migrations.__file__).parent / "versions"
    pending = len(list(versions.glob("0*.py"))) - 3
    assert check.ok and f"applies its {pending} pending migration(s)" in check.detail, check.line()
    with create_engine(f"sqlite:///{path}").begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    check = check_database(f"sqlite:///{path}")
    assert not check.ok and "revision 9999" in check.detail
    check = check_database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert not check.ok and check.fix == f"mkdir -p {tmp_path / 'no' / 'such'}"


def test_an_unreachable_postgresql_is_missing() -> None:
    """Nothing listens on port 1: the check says so quickly, without the password."""
    check = check_database("postgresql://postgres:hunter2@127.0.0.1:1/postgres", timeout_s=2)
    assert not check.ok and check.blocking
    assert "is unreachable" in check.detail and "hunter2" not in check.line()
    assert check.fix is not None and "pg_isready -h 127.0.0.1 -p 1" in check.fix


def test_a_reachable_migrated_postgresql(postgres_url: str) -> None:
    check = check_database(postgres_url)
    assert check.ok and "reachable and migrated" in check.detail, check.line()


def test_model_keys_by_provider() -> None:
    """One check per provider; a model litellm cannot place is missing; a script needs none."""

    def provider_of(model: str) -> str | None:
        return {"gpt-x": "openai", "claude-x": "anthropic"}.get(model)

    def missing_keys(model: str) -> list[str]:
        return ["ANTHROPIC_API_KEY"] if model == "claude-x" else []

    checks = check_model_keys(
        ["gpt-x", "claude-x", "mystery"], provider_of=provider_of, missing_keys=missing_keys
    )
    by_name = {check.name: check for check in checks}
    assert by_name["openai key"].ok
    assert by_name["anthropic key"].blocking
    assert by_name["anthropic key"].fix == "export ANTHROPIC_API_KEY=..."
    assert by_name["model mystery"].blocking
    scripted = check_model_keys(
        ["claude-x"], provider_of=provider_of, missing_keys=missing_keys, scripted=True
    )
    assert [check.status for check in scripted] == ["note"]


def test_an_unpriced_model_is_missing_never_free() -> None:
    check = check_prices(["priced", "free?"], priced=lambda model: model == "priced")
    assert not check.ok and check.blocking and "free?" in check.detail
    assert check_prices(["priced"], priced=lambda model: True).ok


@pytest.fixture
def fake_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Check]]:
    checks: list[Check] = []
    monkeypatch.setattr(bot.doctor, "run_checks", lambda env: iter(checks))
    yield checks


def test_doctor_exits_1_only_when_serve_misses_something(fake_checks: list[Check]) -> None:
    """Exit 1 with a missing need; 0 with only notes; one line a check either way."""
    fake_checks.extend(
        [
            Check("git", True, "git version 2"),
            Check("Node.js", False, "not installed", fix="apt-get install -y nodejs", needed=False),
        ]
    )
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ok      git: git version 2",
        "note    Node.js: not installed — fix: apt-get install -y nodejs",
    ]
    fake_checks.append(Check("webhook secret", False, "not set", fix="export X=1"))
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "missing webhook secret: not set — fix: export X=1"
    assert "missing for bosun serve: webhook secret" in result.stderr
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 1
    assert [entry["status"] for entry in json.loads(result.stdout)] == ["ok", "note", "missing"]


def test_doctor_on_this_machine(tmp_path: Path) -> None:
    """The real checks: one line each, a fix on every missing one, exit 1 iff one is missing."""
    env = {
        "BOSUN_WEBHOOK_SECRET": "",
        "BOSUN_DATABASE_URL": f"sqlite:///{tmp_path / 'bosun.db'}",
        "BOSUN_APP_ID": "",
        "BOSUN_PRIVATE_KEY": "",
        "BOSUN_PRIVATE_KEY_FILE": "",
        "BOSUN_SANDBOX": "",
    }
    result = CliRunner().invoke(main, ["doctor"], env=env)
    lines = result.stdout.splitlines()
    assert result.exit_code == (1 if any(line.startswith("missing") for line in lines) else 0)
    assert result.exit_code == 1  # no webhook secret
    for line in lines:
        assert line.split()[0] in ("ok", "missing", "note"), line
        if not line.startswith("ok"):
            assert " — fix: " in line, line
    names = [line.split(":")[0].split(maxsplit=1)[1] for line in lines]
    for name in ("webhook secret", "GitHub App key", "database", "bubblewrap", "git", "prices"):
        assert name in names


def test_demo_without_bubblewrap_says_one_line_and_exits_1() -> None:
    """No traceback: the one line names both ways out (install it, or --sandbox process)."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_BWRAP],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("bosun: the sandbox cannot isolate agents: bwrap is not")
    assert "apt-get install -y bubblewrap" in done.stderr
    assert "bosun demo --sandbox process" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_without_a_secret_says_one_line() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"BOSUN_WEBHOOK_SECRET": ""})
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("bosun: BOSUN_WEBHOOK_SECRET is not set")
    assert "— fix: export BOSUN_WEBHOOK_SECRET=" in result.stderr


def test_usage_errors_exit_2() -> None:
    assert CliRunner().invoke(main, ["demo", "--sandbox", "nope"]).exit_code == 2
