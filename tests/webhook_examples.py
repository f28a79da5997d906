"""GitHub's recorded webhook payloads (npm `@octokit/webhooks-examples`) for replay tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = (
    Path(__file__).parent
    / "contract/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
)
INSTALL_COMMAND = "npm ci --prefix tests/contract --no-audit --no-fund"


@dataclass(frozen=True)
class Example:
    event: str
    index: int
    payload: dict[str, Any]

    @property
    def delivery_id(self) -> str:
        return f"example-{self.event}-{self.index}"


def examples() -> Iterator[Example]:
    if not INDEX.exists():
        raise RuntimeError(f"{INDEX} is missing: run `{INSTALL_COMMAND}`")
    for definition in json.loads(INDEX.read_text()):
        for index, payload in enumerate(definition["examples"]):
            yield Example(definition["name"], index, payload)
