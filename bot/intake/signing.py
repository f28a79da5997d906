"""Signing a webhook body the way GitHub does, for Bosun's own deliveries (demo, benchmarks)."""

from __future__ import annotations

import hashlib
import hmac


def signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value GitHub would send for this body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(body: bytes, *, secret: str, event: str, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": signature(body, secret),
    }
