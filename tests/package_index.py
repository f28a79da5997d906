"""A real Python package index on 127.0.0.1 for environment tests: PEP 503 pages over wheels.

It serves `tinyround` (a dependency no machine has, built here as a real wheel) and pytest
with its dependencies (real wheels from PyPI, fetched once through pip's own cache), and
records every path it is asked for, so a test can tell whether setup downloaded anything.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# The test runner inside the sandbox, pinned with its dependencies (pure-Python wheels).
PYTEST_WHEELS = (
    "pytest==9.0.3",
    "iniconfig==2.3.1",
    "packaging==26.4",
    "pluggy==1.7.0",
)
TINYROUND = {
    "tinyround/__init__.py": b'"""Rounding as money is rounded."""\n\n'
    b"def to_cents(value: float) -> float:\n    return round(value + 0.0, 2)\n",
}


class PackageIndex:
    """A directory of wheels behind PEP 503 "simple" pages, served in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/simple/"

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, as a policy's `allow_hosts` names it."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def downloads(self) -> list[str]:
        return [path for path in self.requests if path.endswith(".whl")]

    def start(self) -> None:
        write_pages(self.root)
        handler = partial(_Recording, self.requests, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Recording(SimpleHTTPRequestHandler):
    def __init__(self, requests: list[str], *args: object, **kwargs: object) -> None:
        self._requests = requests
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def do_GET(self) -> None:
        self._requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def build_wheel(root: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A pure-Python wheel, written as the wheel format says: the files, then METADATA,
    WHEEL and a RECORD of every file's hash."""
    dist = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    contents[f"{dist}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: bosun-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in contents.items()]
    contents[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    wheel = root / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
    return wheel


def write_pages(root: Path) -> None:
    """`simple/index.html` and one page per project linking its wheels with their hashes."""
    files = root / "files"
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(files.glob("*.whl")):
        projects.setdefault(_normalized(wheel.name.split("-")[0]), []).append(wheel)
    simple = root / "simple"
    simple.mkdir(exist_ok=True)
    links = "".join(f'<a href="{name}/">{name}</a>\n' for name in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    for name, wheels in projects.items():
        page = simple / name
        page.mkdir(exist_ok=True)
        anchors = "".join(
            f'<a href="../../files/{w.name}#sha256={_hex(w.read_bytes())}">{w.name}</a>\n'
            for w in wheels
        )
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{anchors}</body></html>\n")


@pytest.fixture(scope="session")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """The index, started once: `tinyround` built here, pytest's wheels fetched once."""
    root = tmp_path_factory.mktemp("index")
    files = root / "files"
    files.mkdir()
    build_wheel(files, "tinyround", "1.0", TINYROUND)
    fetch = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    fetch += ["--only-binary=:all:", "--python-version", "3.11", "--dest", str(files)]
    subprocess.run([*fetch, *PYTEST_WHEELS], check=True, capture_output=True)
    index = PackageIndex(root)
    index.start()
    yield index
    index.stop()


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
