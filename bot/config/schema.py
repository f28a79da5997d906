"""JSON Schema of `.bosun/` files, for editors and for `policies/schema/`."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from bot.config.models import Policy, TaskSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "policy.schema.json": (Policy, "Bosun policy: .bosun/policy.yaml"),
    "task.schema.json": (TaskSpec, "Bosun task: .bosun/tasks/<name>.yaml"),
}


def schema_texts() -> dict[str, str]:
    """Each schema file's name and its text: sorted keys, two-space indent, final newline."""
    return {name: _text(model, title) for name, (model, title) in _SCHEMAS.items()}


def _text(model: type[BaseModel], title: str) -> str:
    schema = {**model.model_json_schema(), "$schema": DIALECT, "title": title}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(out: Path) -> list[Path]:
    """Write every schema file into the directory `out`, creating it; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_texts().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
