"""The committed JSON Schema in `policies/schema/` matches the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config.schema import DIALECT, export_schemas, schema_texts

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "policies" / "schema"


@pytest.mark.parametrize("name", sorted(schema_texts()))
def test_committed_schema_matches_the_models(name: str) -> None:
    """Editors validate against `policies/schema/`, so it must say what the models say."""
    committed = SCHEMA_DIR / name
    fix = "run `bosun schema export` and commit policies/schema/"
    assert committed.exists(), f"{committed} is missing: {fix}"
    assert committed.read_text(encoding="utf-8") == schema_texts()[name], (
        f"{committed} differs from the models: {fix}"
    )


def test_export_writes_every_schema_with_dialect_and_title(tmp_path: Path) -> None:
    """`bosun schema export OUT` writes stable JSON Schema files that name their dialect."""
    written = export_schemas(tmp_path / "out")
    assert sorted(path.name for path in written) == ["policy.schema.json", "task.schema.json"]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        schema = json.loads(text)
        assert schema["$schema"] == DIALECT
        assert schema["title"].startswith("Bosun ")
        assert schema["additionalProperties"] is False
    assert export_schemas(tmp_path / "out") == written
    assert [path.read_text(encoding="utf-8") for path in written] == list(schema_texts().values())
