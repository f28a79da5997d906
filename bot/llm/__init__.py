"""Models: the litellm client (routing, prices, cache) and budgets."""
