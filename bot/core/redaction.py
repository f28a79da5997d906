"""Secrets out of what Bosun keeps and shows: transcripts, check runs, comments and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"
MIN_SECRET = 8  # shorter values would blank out ordinary words
# Token shapes that must never be kept even when Bosun was not told the value.
PATTERNS = (
    re.compile(r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{20,}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}\b"),  # OpenAI, Anthropic keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)(https?://)[^\s/:@]+:[^\s/@]+@"),  # credentials in a URL
)


SECRET_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)")


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """The values of the environment's variables that are named like secrets: provider keys,
    the webhook secret, database passwords in URLs aside (those are redacted by shape)."""
    return [value for name, value in environ.items() if SECRET_NAME.search(name) and value]


class Redactor:
    """Replaces every known secret value, and anything shaped like a token, with a marker."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = {secret for secret in secrets if secret and len(secret) >= MIN_SECRET}
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted(known, key=len, reverse=True)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in PATTERNS:
            text = pattern.sub(_replacement, text)
        return text


def _replacement(match: re.Match[str]) -> str:
    scheme = match.group(1) if match.re.groups else None
    return f"{scheme}{REDACTED}@" if scheme else REDACTED
