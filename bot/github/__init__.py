"""GitHub: the transport (gidgethub, tokens, ETags, retries) and the clients Bosun uses."""
