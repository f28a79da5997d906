"""Webhook intake: POST /webhook, group commit, signatures, the dispatcher of deliveries."""
